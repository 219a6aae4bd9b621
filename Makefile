# make spec  - set everything up, start the native stack, run the behave specification
# make test  - everything CI checks: lint, unit tests, integration tests, the specification
VENV   ?= .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed

.PHONY: spec test lint unit integration features deps system-deps stack-up stack-down clean

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

test: deps lint unit
	bash scripts/with-stack.sh $(MAKE) --no-print-directory integration features

lint: $(STAMP)
	$(VENV)/bin/ruff check src tests features

unit: $(STAMP)
	$(PY) -m pytest tests/unit -q

integration: $(STAMP)
	$(PY) -m pytest tests/integration -q

features: $(STAMP)
	$(VENV)/bin/agentevents spec --workers 3

stack-up: deps
	$(VENV)/bin/agentevents stack up

stack-down:
	$(VENV)/bin/agentevents stack down

clean:
	rm -rf reports .pytest_cache
