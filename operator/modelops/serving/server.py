"""Start-up and shutdown of a serving process: fetch, load, bind, serve, drain.

The model is fetched and loaded *before* the port opens, so a pod turns ready only once it can
predict (a load failure exits 1 with the reason in the log). uvicorn owns the signals: on SIGTERM
it stops accepting, lets in-flight requests finish (up to ``GRACEFUL_SHUTDOWN_SECONDS``) and
returns, and the process exits 0. Nothing is written outside ``tempfile.gettempdir()``.
"""

from __future__ import annotations

import contextlib
import logging
import shutil
import signal
import tempfile
import threading
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any

import grpc
import uvicorn

from modelops.artifacts import METADATA_FILE, MODEL_DIR_FILES, PROFILE_FILE, UNSAFE_MODEL_FILE
from modelops.frames import feed_for
from modelops.serving.app import ServingApp
from modelops.serving.card import fetch_card, read_card
from modelops.serving.compiled import select_predictor
from modelops.serving.dataplane import DataPlane
from modelops.serving.grpc_server import start_grpc_server
from modelops.serving.loader import LoadedModel, ModelLoadError, load_model_dir
from modelops.serving.metrics import ServingMetrics
from modelops.serving.settings import GRACEFUL_SHUTDOWN_SECONDS, ServeSettings
from modelops.storage import StorageError, local_path, parse_uri, redact_uri
from modelops.storage.fetch import fetch_dir

logger = logging.getLogger("modelops.serving")


class DrainingServer(uvicorn.Server):
    """uvicorn's server, except that a SIGTERM it drained cleanly ends the process with 0.

    uvicorn re-raises the caught signal after shutting down, so the process would die "killed by
    SIGTERM"; a pod that stopped as asked should exit 0. With ``start_grpc``, the gRPC server is
    started in the same event loop before the HTTP port opens (so a ready pod serves both) and
    stopped, with the same grace period, once HTTP has drained.
    """

    def __init__(
        self,
        config: uvicorn.Config,
        start_grpc: Callable[[], Awaitable[grpc.aio.Server]] | None = None,
    ) -> None:
        super().__init__(config)
        self.start_grpc = start_grpc
        self.grpc_failed = False

    async def serve(self, sockets: Any = None) -> None:
        grpc_server = None
        if self.start_grpc is not None:
            try:
                grpc_server = await self.start_grpc()
            except RuntimeError as exc:  # grpcio: the port could not be bound
                logger.error("gRPC server could not start: %s", exc)
                self.grpc_failed = True
                return
        try:
            await super().serve(sockets)
        finally:
            if grpc_server is not None:
                await grpc_server.stop(GRACEFUL_SHUTDOWN_SECONDS)

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        if threading.current_thread() is not threading.main_thread():
            yield
            return
        handled = (signal.SIGINT, signal.SIGTERM)
        original = {sig: signal.signal(sig, self.handle_exit) for sig in handled}
        try:
            yield
        finally:
            for sig, handler in original.items():
                signal.signal(sig, handler)


def fetch_model(uri: str, workdir: Path, *, allow_unsafe_pickle: bool) -> Path:
    """The local model directory for ``uri`` (downloaded into ``workdir`` when remote).

    A local directory is used in place and its files are checked by the loader, whose messages
    say more (e.g. that only a pickle is there and how to opt in).
    """
    if not parse_uri(uri).is_remote:
        path = local_path(uri)
        if not path.is_dir():
            raise StorageError(f"{uri!r}: no such directory ({path})")
        return path
    try:
        path = fetch_dir(uri, workdir, MODEL_DIR_FILES)
    except StorageError:
        if not allow_unsafe_pickle:
            raise
        path = fetch_dir(uri, workdir, (UNSAFE_MODEL_FILE, PROFILE_FILE, METADATA_FILE))
    fetch_card(uri, workdir)
    return path


def build_app(loaded: LoadedModel, settings: ServeSettings) -> ServingApp:
    """The ASGI app for a loaded model."""
    version = settings.model_version or loaded.metadata.version
    predictor, reason = select_predictor(
        loaded.estimator,
        loaded.profile,
        numeric=not loaded.metadata.categorical_features,
        compile=settings.compiled_predictor,
        feed=feed_for(loaded.metadata.features, loaded.metadata.feature_dtypes),
    )
    logger.info(
        "Predicting with the %s predictor: %s", predictor.kind, reason, extra={"reason": reason}
    )
    info = {
        "estimator": loaded.metadata.estimator,
        "task": loaded.metadata.task,
        "format": "pickle" if loaded.unsafe else "skops",
        "uri": redact_uri(settings.model_uri),
        "predictor": predictor.kind,
    }
    metrics = ServingMetrics(
        settings.name, version, loaded.profile, info, count_bins=settings.count_feature_bins
    )
    dataplane = DataPlane(
        loaded,
        name=settings.name,
        version=version,
        max_rows=settings.max_rows,
        metrics=metrics,
        predictor=predictor,
    )
    return ServingApp(
        dataplane,
        max_request_bytes=settings.max_request_bytes,
        card_json=read_card(loaded.model_file.parent),
    )


def uvicorn_config(app: Any, host: str, port: int, *, access_log: bool = False) -> uvicorn.Config:
    """uvicorn as the server runs it (the benchmark's floor uses the very same settings)."""
    return uvicorn.Config(
        app,
        host=host,
        port=port,
        loop="auto",  # uvloop
        http="auto",  # httptools
        lifespan="off",
        access_log=access_log,
        log_config=None,  # logs.configure_logging owns the handlers
        server_header=False,
        proxy_headers=False,  # no proxy in front of a pod; saves a middleware per request
        timeout_graceful_shutdown=GRACEFUL_SHUTDOWN_SECONDS,
    )


def serve(settings: ServeSettings) -> int:
    """Load the model, serve until SIGTERM/SIGINT; returns the process exit code."""
    import sklearn

    workdir = Path(tempfile.mkdtemp(prefix="modelops-serve-"))
    try:
        try:
            path = fetch_model(
                settings.model_uri, workdir, allow_unsafe_pickle=settings.allow_unsafe_pickle
            )
            loaded = load_model_dir(path, allow_unsafe_pickle=settings.allow_unsafe_pickle)
        except (StorageError, ModelLoadError) as exc:
            logger.error(
                "Model load failed: %s", exc, extra={"uri": redact_uri(settings.model_uri)}
            )
            return 1
        app = build_app(loaded, settings)
        dataplane = app.dataplane
        logger.info(
            "Model %s version %s loaded",
            dataplane.name,
            dataplane.version,
            extra={
                "uri": redact_uri(settings.model_uri),
                "estimator": loaded.metadata.estimator,
                "features": len(loaded.metadata.features),
                "format": loaded.model_file.name,
            },
        )
        # The protocol layer refuses infinity, and a matrix with a missing value (NaN) is
        # predicted with the checks on (DataPlane.predict_arrays): spare scikit-learn the check
        # on the rest. The config is per thread: this covers the event-loop thread (worker
        # threads use DataPlane.predict_in_thread).
        sklearn.set_config(assume_finite=True)
        config = uvicorn_config(app, settings.host, settings.port, access_log=settings.access_log)
        start_grpc = None
        if settings.grpc_port:

            async def start_grpc() -> grpc.aio.Server:
                server = await start_grpc_server(
                    dataplane,
                    app.batcher,
                    settings.host,
                    settings.grpc_port,
                    max_request_bytes=settings.max_request_bytes,
                )
                logger.info("gRPC inference service on port %d", settings.grpc_port)
                return server

        server = DrainingServer(config, start_grpc)
        server.run()
        if server.grpc_failed:
            return 3  # the gRPC port could not be bound: uvicorn's exit code for its own port
        if not server.started:
            return 1  # could not bind; uvicorn logged why
        logger.info("Server stopped")
        return 0
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
