# syntax=docker/dockerfile:1
# One image for the operator, the model server and the trainer: `modelops operator|serve|train`.
# Runs as a numeric non-root user with a read-only root filesystem; the only writable path it
# needs is /tmp (mount an emptyDir there). Build: `make image`.

# The interpreter the lock file was resolved and tested with.
ARG PYTHON_IMAGE=python:3.11.7-slim-bookworm

FROM ${PYTHON_IMAGE} AS build
ENV PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_ROOT_USER_ACTION=ignore
WORKDIR /src
# Dependencies first (their layer survives source edits), installed exactly as pinned: `--no-deps`
# plus `pip check` fail the build when the lock is incomplete instead of resolving silently.
COPY requirements.lock ./
RUN python -m venv /opt/modelops \
    && /opt/modelops/bin/pip install --no-deps --only-binary=:all: -r requirements.lock
COPY pyproject.toml README.md ./
COPY operator ./operator
RUN python -m pip install setuptools==80.9.0 wheel==0.45.1 \
    && python -m pip wheel --no-deps --no-build-isolation --wheel-dir /wheels . \
    && /opt/modelops/bin/pip install --no-deps /wheels/*.whl \
    && /opt/modelops/bin/pip check \
    && /opt/modelops/bin/python -m compileall -q /opt/modelops \
    && /opt/modelops/bin/modelops --help >/dev/null

FROM ${PYTHON_IMAGE}
LABEL org.opencontainers.image.title="modelops" \
      org.opencontainers.image.description="Kubernetes operator, model server and trainer for scikit-learn models" \
      org.opencontainers.image.licenses="Apache-2.0"
COPY --from=build /opt/modelops /opt/modelops
# No bytecode or caches written at run time (the root filesystem is read-only); scratch space
# and HOME live in /tmp; pvc:// URIs resolve under MODELOPS_PVC_ROOT.
ENV PATH=/opt/modelops/bin:$PATH \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    TMPDIR=/tmp \
    HOME=/tmp \
    MODELOPS_PVC_ROOT=/mnt/modelops
USER 10001:10001
WORKDIR /tmp
EXPOSE 8000 8080
ENTRYPOINT ["modelops"]
CMD ["--help"]
