# changelake developer workflow. Two commands matter: `make run` and `make test`.
SHELL := /bin/bash
PYTHON ?= python3
UV_VERSION := 0.13.9
VENV := .venv
SAM_VENV := .venv-sam
CHECKOV_VENV := .venv-checkov
PY := $(VENV)/bin/python
SAM := $(SAM_VENV)/bin/sam
DURATION ?= 0
RATE ?= 50
NIGHT ?= 60
# 0: the stack's own ChangeTable; N: N tables of your own, followed through SourceStreamArns
TABLES ?= 0
PYTEST_ARGS ?=
RUN_ARGS ?=
BENCH_ARGS ?=

# The browser the status page's test drives (scripts/provision-browser installs it where it can).
export CHROMIUM ?= /usr/bin/chromium
export AWS_DEFAULT_REGION ?= us-east-1
export SAM_CLI_TELEMETRY := 0

.PHONY: help setup environments browser run soak test lint typecheck template-check workflow-check unit functional integration bench lock clean invoke

help:
	@echo "make run        run the whole pipeline locally (DURATION=seconds, RATE=changes/s, NIGHT=seconds, TABLES=n)"
	@echo "make test       lint, type-check, check the template and run every test"
	@echo "make soak       the local pipeline with faults for DURATION (default 600) s: memory, lag, nothing lost"
	@echo "make bench      run the benchmark suite (bench/)"
	@echo "make invoke FUNCTION=AggregatorFunction EVENT=events/sqs_batch.json   one function, no Docker"
	@echo "make lock       re-pin requirements-dev.txt, requirements/sam.txt, requirements/checkov.txt and the layer's shared/requirements.txt"

$(VENV)/.installed: requirements-dev.txt shared/pyproject.toml pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(VENV)/bin/pip install -q uv==$(UV_VERSION)
	$(VENV)/bin/uv pip install -q --python $(PY) -r requirements-dev.txt
	touch $@

$(SAM_VENV)/.installed: requirements/sam.txt $(VENV)/.installed
	$(PYTHON) -m venv $(SAM_VENV)
	$(VENV)/bin/uv pip install -q --python $(SAM_VENV)/bin/python -r requirements/sam.txt
	touch $@

# checkov pins an older boto3 than the dev set, so it lives apart too.
$(CHECKOV_VENV)/.installed: requirements/checkov.txt $(VENV)/.installed
	$(PYTHON) -m venv $(CHECKOV_VENV)
	$(VENV)/bin/uv pip install -q --python $(CHECKOV_VENV)/bin/python -r requirements/checkov.txt
	touch $@

environments: $(VENV)/.installed $(SAM_VENV)/.installed $(CHECKOV_VENV)/.installed

# Debian's chromium for tests/integration/test_status_page.py: installed as root on Debian, otherwise
# one line saying what to install, before any test runs.
browser:
	@scripts/provision-browser

# Everything `make test` needs; `make run` needs only the environments.
setup: environments browser

lint: $(VENV)/.installed
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

# Twice: for 3.11, the oldest Python the code runs on, and for 3.13, which Lambda runs (typeshed
# knows every module and function 3.12 and 3.13 removed)
typecheck: $(VENV)/.installed
	$(VENV)/bin/mypy
	$(VENV)/bin/mypy --python-version 3.13

template-check: environments
	$(SAM) validate --lint --template template.yaml
	$(VENV)/bin/cfn-lint --include-checks I -- template.yaml
	BC_SKIP_MAPPING=TRUE $(CHECKOV_VENV)/bin/checkov --file template.yaml --framework cloudformation \
		--skip-download --compact --quiet

# GitHub workflows, offline (actionlint from requirements-dev.txt)
workflow-check: $(VENV)/.installed
	$(VENV)/bin/actionlint

test: setup lint typecheck template-check workflow-check
	SAM_BIN=$(abspath $(SAM)) $(PY) -m pytest $(PYTEST_ARGS)

unit: $(VENV)/.installed
	$(PY) -m pytest tests/unit $(PYTEST_ARGS)

functional: $(VENV)/.installed
	$(PY) -m pytest tests/functional $(PYTEST_ARGS)

integration: setup
	SAM_BIN=$(abspath $(SAM)) $(PY) -m pytest tests/integration $(PYTEST_ARGS)

run: environments
	$(PY) -m changelake_local run --duration $(DURATION) --rate $(RATE) --night $(NIGHT) --tables $(TABLES) $(RUN_ARGS)

# The soak (tests/integration/test_soak.py, marked slow): DURATION defaults to 600 s here, RATE to
# 50/s, FAULTS to flaky; the report is printed and written to SOAK_REPORT.
soak: DURATION = 600
FAULTS ?= flaky
SOAK_REPORT ?= lake/soak-report.md
soak: environments
	SOAK_DURATION=$(DURATION) SOAK_RATE=$(RATE) SOAK_FAULTS=$(FAULTS) SOAK_REPORT=$(SOAK_REPORT) \
		$(PY) -m pytest tests/integration/test_soak.py -m slow -s $(PYTEST_ARGS)

invoke: environments
	$(PY) -m changelake_local invoke $(FUNCTION) --event $(EVENT)

bench: $(VENV)/.installed
	$(PY) -m bench $(BENCH_ARGS)

lock:
	uv pip compile --python-version 3.11 requirements/dev.in -o requirements-dev.txt
	uv pip compile --python-version 3.11 requirements/sam.in -o requirements/sam.txt
	uv pip compile --python-version 3.11 requirements/checkov.in -o requirements/checkov.txt
	$(MAKE) -C shared lock

clean:
	rm -rf $(VENV) $(SAM_VENV) $(CHECKOV_VENV) .aws-sam .pytest_cache .mypy_cache .ruff_cache
