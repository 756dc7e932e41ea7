# Two commands on a fresh machine with Python 3.11: `make demo` and `make test`.
PYTHON ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-$(shell sha1sum requirements.txt | cut -c1-12)
export PYTHONPATH := $(CURDIR)/include:$(CURDIR)

.PHONY: install demo up down status test lint scenarios clean

install: $(STAMP)

$(STAMP): requirements.txt
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --no-deps -r requirements.txt
	rm -f $(VENV)/.installed-*
	touch $(STAMP)

demo: install
	$(BIN)/python -m leadflow.devstack demo

up: install
	$(BIN)/python -m leadflow.devstack up

down: install
	$(BIN)/python -m leadflow.devstack down

status: install
	$(BIN)/python -m leadflow.devstack status

test: install
	$(BIN)/python -m pytest

lint: install
	$(BIN)/ruff check dags include plugins sandbox scenarios scripts tests

scenarios: install
	$(BIN)/python scenarios/generate.py --out scenarios/default.json
	$(BIN)/python scenarios/generate.py --out scenarios/small.json --small

clean:
	rm -rf .local $(VENV)
