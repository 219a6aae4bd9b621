# make spec    - set everything up, start the native stack, run the behave specification, write the report
# make test    - everything CI checks: lint, unit, integration, the specification, its report in a browser
# make checks  - what `make test` checks besides the native specification run (CI runs `make spec` first)
# make conformance - the second configuration: the specification against `agentevents serve` (serve.toml)
# make bench   - the side-by-side benchmark (not part of test): installs the `bench` extra, runs it with the stack up
VENV   ?= .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed

.PHONY: spec test checks bench conformance docs-check lint unit integration chaos features browser report-check deps system-deps stack-up stack-down clean

$(STAMP): requirements.txt pyproject.toml
	python3 -m venv $(VENV)
	$(VENV)/bin/pip install -q --upgrade pip
	$(VENV)/bin/pip install -q -r requirements.txt
	$(VENV)/bin/pip install -q --no-deps -e .
	touch $(STAMP)

deps: system-deps $(STAMP)

system-deps:
	@bash scripts/install-system-deps.sh

spec: deps
	$(VENV)/bin/agentevents spec --workers 3

test: deps lint docs-check unit browser
	bash scripts/with-stack.sh $(MAKE) --no-print-directory integration fuzz chaos features
	$(MAKE) --no-print-directory report-check conformance

checks: deps lint docs-check unit browser
	bash scripts/with-stack.sh $(MAKE) --no-print-directory integration fuzz chaos
	$(MAKE) --no-print-directory report-check conformance

# Ours against raw websockets (from memory, behind a Redis hop), python-socketio and Django Channels;
# tables and plots in benchmarks/results/. BENCH_ARGS=--quick for a smoke run, --only SYSTEM,... to pick.
BENCH_ARGS ?=
bench: deps
	$(VENV)/bin/pip install -q -e '.[bench]'
	bash scripts/with-stack.sh $(PY) benchmarks/compare.py $(BENCH_ARGS)

# serve.toml: RS256 tokens, another issuer, audience, grace and tier limits; its report in reports/serve
conformance: deps
	$(VENV)/bin/agentevents spec --target features/targets/serve.toml --reports reports/serve
	$(PY) tests/browser/check_report.py reports/serve/specification.html reports/serve/specification.json features

# docs/coverage.md lists every plan test with the capabilities it needs, as the features say
docs-check: $(STAMP)
	$(PY) -m agentevents.testing.coverage --check

lint: $(STAMP)
	$(VENV)/bin/ruff check src tests features

unit: $(STAMP)
	$(PY) -m pytest tests/unit -q

integration: $(STAMP)
	$(PY) -m pytest tests/integration -q

# 10,000 hostile frames through HAProxy while a canary's runs must complete in order (exit 1 on any violation)
fuzz: $(STAMP)
	$(VENV)/bin/agentevents fuzz --frames 10000 --connections 4 --seed 1 --duration-max 300 --report reports/fuzz.json

# 200 runs over 60 s under 10 random faults, then the history checker (exit 1 on any violation)
chaos: $(STAMP)
	$(VENV)/bin/agentevents chaos --runs 200 --duration 60 --faults 10 --report reports/chaos.json

browser: $(STAMP)
	$(PY) -m pytest tests/browser -q

# the last run's report, opened in headless Chromium: every scenario, the counts and the figures visible
report-check: $(STAMP)
	$(PY) tests/browser/check_report.py reports/specification.html reports/specification.json features

features: $(STAMP)
	$(VENV)/bin/agentevents spec --workers 3

stack-up: deps
	$(VENV)/bin/agentevents stack up

stack-down:
	$(VENV)/bin/agentevents stack down

clean:
	rm -rf reports .pytest_cache
