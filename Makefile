# The two commands of the README. Both do all set-up first (tools/setup).
VENV ?= .venv
PYTEST_ARGS ?=

.PHONY: run test lint setup-run setup-test

run: setup-run
	$(VENV)/bin/courtlink serve

test: setup-test
	$(VENV)/bin/ruff check courtlink tests
	$(VENV)/bin/ruff format --check courtlink tests
	$(VENV)/bin/mypy
	$(VENV)/bin/pytest $(PYTEST_ARGS)

lint: setup-test
	$(VENV)/bin/ruff check courtlink tests
	$(VENV)/bin/mypy

setup-run:
	@VENV=$(VENV) tools/setup run

setup-test:
	@VENV=$(VENV) tools/setup test
