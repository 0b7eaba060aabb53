# ModelOps operator: every target CI and users call. `make help` lists them.
SHELL := bash
.DEFAULT_GOAL := help
PYTHON ?= python3
IMAGE ?= modelops:dev
CLUSTER ?= modelops
NAMESPACE ?= modelops-system
PYTEST_ARGS ?=
# `make test` fails when a package's line coverage is under this (CI: 90; locally, where the
# control-plane tests may skip, the figures are only printed).
COVERAGE_FAIL_UNDER ?= $(if $(CI),90,0)
DEMO_NAMESPACE ?= modelops-demo
IMAGE_REPOSITORY = $(firstword $(subst :, ,$(IMAGE)))
IMAGE_TAG = $(lastword $(subst :, ,$(IMAGE)))

.PHONY: help install install-dev lint typecheck crds verify test unit integration e2e bench image kind-up kind-down deploy undeploy clean k8s-bin s3-bin kserve-client mutation coverage

help: ## Show this help
	@grep -E '^[a-zA-Z0-9_-]+:.*?## ' $(MAKEFILE_LIST) | awk 'BEGIN {FS = ":.*?## "}; {printf "  \033[36m%-12s\033[0m %s\n", $$1, $$2}'

install: ## Install the package (operator, server, trainer)
	$(PYTHON) -m pip install -e .

install-dev: ## Install the package with test, lint and bench extras
	$(PYTHON) -m pip install -e '.[test,lint,bench]'

lint: ## ruff check and format check; the import layers (import-linter contracts in pyproject.toml)
	$(PYTHON) -m ruff check operator tests benchmarks
	$(PYTHON) -m ruff format --check operator tests benchmarks
	lint-imports

typecheck: ## mypy --strict on the package
	$(PYTHON) -m mypy

crds: ## Regenerate the CRDs (crds/, charts/modelops/crds/) from the pydantic types
	$(PYTHON) -m modelops crds

verify: lint typecheck ## Lint, type-check and check that generated files are fresh
	$(PYTHON) -m modelops crds --check
	$(PYTHON) hack/grpc_stubs.py --check

test: verify ## Everything CI runs: verify, then every tier with line coverage, printed per package
	$(PYTHON) -m pytest --cov --cov-report=term-missing:skip-covered --durations=20 $(PYTEST_ARGS)
	$(PYTHON) tests/coverage_packages.py --fail-under $(COVERAGE_FAIL_UNDER)

unit: ## Unit tests only
	$(PYTHON) -m pytest tests/unit $(PYTEST_ARGS)

integration: ## Integration tests only (real processes, KMock, Prometheus)
	$(PYTHON) -m pytest tests/integration $(PYTEST_ARGS)

e2e: ## End-to-end tests against the current kubectl context (e.g. after `make kind-up`)
	MODELOPS_E2E=1 MODELOPS_E2E_NAMESPACE=$(DEMO_NAMESPACE) MODELOPS_E2E_OPERATOR_NAMESPACE=$(NAMESPACE) \
		$(PYTHON) -m pytest tests/e2e -v -m e2e $(PYTEST_ARGS)

bench: ## Benchmarks (print figures and ratios against peers)
	$(PYTHON) benchmarks/drift_bench.py
	$(PYTHON) benchmarks/serving_bench.py
	$(PYTHON) benchmarks/operator_bench.py

image: ## Build the one image for operator, server and trainer
	docker build -t $(IMAGE) .

kind-up: ## Create a kind cluster, load the image, install the chart, first model, samples
	@for tool in docker kind kubectl helm; do command -v $$tool >/dev/null || \
		{ echo "kind-up needs $$tool on the PATH (see README, 'Try it on kind')"; exit 1; }; done
	kind get clusters 2>/dev/null | grep -qx '$(CLUSTER)' || \
		kind create cluster --name $(CLUSTER) --config kind-config.yaml --wait 180s
	kubectl config use-context kind-$(CLUSTER)
	docker build -t $(IMAGE) .
	kind load docker-image $(IMAGE) --name $(CLUSTER)
	kubectl create namespace $(NAMESPACE) --dry-run=client -o yaml | kubectl apply -f -
	kubectl label namespace $(NAMESPACE) --overwrite pod-security.kubernetes.io/enforce=restricted
	helm upgrade --install modelops charts/modelops --namespace $(NAMESPACE) \
		--set image.repository=$(IMAGE_REPOSITORY) --set image.tag=$(IMAGE_TAG) --wait --timeout 5m
	kubectl kustomize manifests/kind | sed 's|image: modelops:dev|image: $(IMAGE)|' | kubectl apply -f -
	kubectl -n $(DEMO_NAMESPACE) wait --for=condition=complete job/modelops-first-model --timeout=300s
	kubectl -n $(DEMO_NAMESPACE) apply -k manifests/samples
	kubectl -n $(DEMO_NAMESPACE) wait --for=condition=Ready modeldeployment/iris --timeout=300s
	@echo "ModelOps runs on kind: kubectl -n $(DEMO_NAMESPACE) get modelops; then make e2e"

kind-down: ## Delete the kind cluster
	kind delete cluster --name $(CLUSTER)

deploy: ## Install CRDs, RBAC and the operator with kustomize into the current context
	kubectl apply --server-side -k manifests/default

undeploy: ## Remove what `deploy` installed: the custom resources first, while the operator still runs (ModelDeployments carry its finalizer)
	-kubectl delete driftpolicies.modelops.dev,modeldeployments.modelops.dev --all --all-namespaces --wait --timeout=120s
	kubectl delete -k manifests/default --ignore-not-found

k8s-bin: ## Build the test control plane (kube-apiserver, kube-controller-manager, etcd) into a cache, once
	bash hack/k8s/build.sh

s3-bin: ## Build the test S3 server (SeaweedFS) into a cache, once
	bash hack/seaweedfs/build.sh

clean: ## Remove caches and build output
	rm -rf build dist .pytest_cache .mypy_cache .ruff_cache operator/*.egg-info

kserve-client: ## KServe's Python client in .venv-kserve/ for the real-client tests (it pins protobuf<7, pandas<3)
	test -x .venv-kserve/bin/python || $(PYTHON) -m venv .venv-kserve
	.venv-kserve/bin/python -m pip install -q 'kserve==0.21.0'

mutation: ## Mutation testing (mutmut) of the decision modules against the unit tier; writes mutation-report.md
	$(PYTHON) tests/mutation_report.py run $(if $(MUTATION_JOBS),--jobs $(MUTATION_JOBS))

coverage: ## Line coverage of operator/modelops (subprocesses included) by the unit and integration tiers, per package
	$(PYTHON) -m pytest tests/unit tests/integration --cov --cov-report=term-missing:skip-covered $(PYTEST_ARGS)
	$(PYTHON) tests/coverage_packages.py --fail-under 90
