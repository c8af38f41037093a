# kubeloop developer entrypoints. `make test` is the one test command (CI runs it through .ci/run).
VENV   ?= .venv
PY     := $(VENV)/bin/python
BIN    := $(VENV)/bin
PYTEST_ARGS ?=
DEMO_ARGS ?=

.PHONY: install tools lint test unit integration e2e crds chart cluster-up cluster-down demo bench clean

$(BIN)/python:
	python3.11 -m venv $(VENV) || python3 -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip

install: $(BIN)/python  ## virtualenv + the package with every extra
	$(BIN)/pip install --quiet -e '.[dev]'

tools: install  ## build (or reuse from the cache) the upstream binaries the local cluster runs
	$(BIN)/kubeloop-cluster build

lint:  ## ruff, formatting, the layering contracts, and generated files in step with the models
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/lint-imports
	$(BIN)/python -m kubeloop.api.crdgen --check

crds:  ## regenerate crds/, the chart's CRD templates, values schema and docs/api.md from the pydantic models
	$(BIN)/python -m kubeloop.api.crdgen

chart: crds tools  ## lint the chart with the locally built helm
	$$($(BIN)/python -c 'from kubeloop_cluster.toolchain import binary; print(binary("helm"))') lint --strict charts/kubeloop

unit:
	$(BIN)/pytest -m "not integration and not e2e" $(PYTEST_ARGS)

integration: tools
	$(BIN)/pytest -m integration $(PYTEST_ARGS)

e2e: tools
	$(BIN)/pytest -m e2e $(PYTEST_ARGS)

test: lint tools  ## the test command: lint, then unit, integration and e2e tests in one session
	$(BIN)/pytest $(PYTEST_ARGS)

demo: tools  ## the closed loop on a local cluster of its own: live view, lineage, demo-output/closed-loop.png
	$(BIN)/kubeloop-demo $(DEMO_ARGS)

cluster-up: tools  ## start the local cluster; prints the kubeconfig path
	@$(BIN)/kubeloop-cluster up

cluster-down:
	@$(BIN)/kubeloop-cluster down

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache

bench: install  ## side-by-side benchmarks against the peers (each peer in its own virtualenv); minutes to tens of minutes
	$(PY) bench/drift/run.py
	$(PY) bench/drift/calibration.py
	$(PY) bench/serving/run.py
