# make spec    - set everything up, start the native stack, run the behave specification, write the report
# make test    - everything CI checks: lint, unit, integration, the specification, its report in a browser
# make checks  - what `make test` checks besides running the specification (CI runs `make spec` first)
VENV   ?= .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed

.PHONY: spec test checks lint unit integration features browser report-check deps system-deps stack-up stack-down clean

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

test: deps lint unit browser
	bash scripts/with-stack.sh $(MAKE) --no-print-directory integration features
	$(MAKE) --no-print-directory report-check

checks: deps lint unit browser
	bash scripts/with-stack.sh $(MAKE) --no-print-directory integration
	$(MAKE) --no-print-directory report-check

lint: $(STAMP)
	$(VENV)/bin/ruff check src tests features

unit: $(STAMP)
	$(PY) -m pytest tests/unit -q

integration: $(STAMP)
	$(PY) -m pytest tests/integration -q

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
