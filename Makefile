# Two commands on a fresh machine with Python 3.11 and pip: `make demo` and `make test`.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
INSTALLED := $(VENV)/.installed

.PHONY: install demo test ui lock validate clean

$(INSTALLED): requirements.lock pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --disable-pip-version-check -r requirements.lock
	$(BIN)/pip install --quiet --disable-pip-version-check --no-deps -e .
	touch $@

install: $(INSTALLED)

demo: install  ## run the demo end to end: sandbox + DuckDB + SQLite Dagster storage
	$(BIN)/handoff demo

test: install  ## run the whole test suite
	$(BIN)/pytest

ui: install  ## open the Dagster UI on the project's instance
	$(BIN)/handoff ui

validate: install  ## check that the code location loads
	$(BIN)/dagster definitions validate -w workspace.yaml

lock:  ## re-resolve requirements.lock from pyproject.toml
	$(BIN)/pip install --quiet pip-tools
	$(BIN)/pip-compile --quiet --extra test --strip-extras -o requirements.lock pyproject.toml

clean:
	rm -rf $(VENV) .handoff dbt_project/target dbt_project/logs
