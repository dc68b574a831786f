# Two entry points for a fresh machine with only Python 3.11+: `make demo` and `make test`.
# Each bootstraps uv into .tools/ and the locked environment into .venv/ by itself.
PYTHON ?= python3
UV := .tools/bin/uv
VENV := .venv
PY := $(VENV)/bin/python

.PHONY: demo test test-live lint typecheck bench bench-triggerer reliability clean

$(UV):
	$(PYTHON) -c 'import sys; sys.exit("Python 3.11+ is required" if sys.version_info < (3, 11) else 0)'
	$(PYTHON) -m venv .tools
	.tools/bin/pip install --quiet --disable-pip-version-check uv

$(VENV)/.synced: $(UV) pyproject.toml uv.lock
	$(UV) sync --frozen --extra local --compile-bytecode --quiet
	touch $@

demo: $(VENV)/.synced
	$(PY) -m demo $(ARGS)

lint: $(VENV)/.synced
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

typecheck: $(VENV)/.synced
	$(VENV)/bin/mypy

test: lint typecheck
	$(VENV)/bin/pytest -q

# only the tests on a real Airflow (scheduler, triggerer, dag-processor, api-server): watchers, a triggerer kill
test-live: $(VENV)/.synced
	$(VENV)/bin/pytest -q -s tests/cluster

bench: $(VENV)/.synced
	$(UV) sync --frozen --extra local --group bench --compile-bytecode --quiet
	$(PY) -m benchmarks.engine
	$(PY) -m benchmarks.local_history
	$(PY) -m benchmarks.poll_cost
	$(PY) -m benchmarks.shared_poll
	$(PY) -m benchmarks.local_server
	$(PY) -m benchmarks.artifact_scale
	$(PY) -m benchmarks.history_scale

# about 10 minutes: 1,000 automations in a real triggerer (scheduler, dag-processor, api-server too)
bench-triggerer: $(VENV)/.synced
	$(PY) -m benchmarks.triggerer_scale

# about 25 minutes: the hostile-input corpus, the fault suite (500 events, 50 kills) and HA triggerers
# on PostgreSQL (300 events, 100 watchers); writes RELIABILITY.md. `make test` runs a slice of each.
reliability: $(VENV)/.synced
	$(PY) -m reliability $(ARGS)

clean:
	rm -rf .tools $(VENV) demo-home
