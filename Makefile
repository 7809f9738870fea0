# Two commands for a newcomer: `make run` and `make test`.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-stamp
TEST_POSTGRES_URL ?= postgresql://postgres@127.0.0.1:5432/test

.PHONY: run test lint install clean screenshots

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[test]'
	touch $(STAMP)

install: $(STAMP)

run: $(STAMP)
	$(BIN)/tiantian migrate
	$(BIN)/tiantian seed-demo
	$(BIN)/tiantian serve

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/mypy

# Every database test runs twice: on a fresh SQLite file and on a fresh PostgreSQL
# database (made from TEST_POSTGRES_URL and dropped afterwards).
test: lint
	TIANTIAN_TEST_DB=sqlite $(BIN)/pytest
	TIANTIAN_TEST_DB=postgres TEST_POSTGRES_URL=$(TEST_POSTGRES_URL) $(BIN)/pytest

# The README's screenshots, from the browser tests (on SQLite).
screenshots: $(STAMP)
	TIANTIAN_TEST_DB=sqlite TIANTIAN_SCREENSHOTS=refresh $(BIN)/pytest tests/test_browser.py

clean:
	rm -rf $(VENV) var .mypy_cache .ruff_cache .pytest_cache
