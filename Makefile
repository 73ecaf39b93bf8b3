# Égide — the two commands of the quick start:
#   make serve   install Égide (in .venv) and start it on the embedded defaults
#   make test    install the test tools and run every check and test
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
HOST   ?= 127.0.0.1
PORT   ?= 8000

.PHONY: serve test install install-test lint docs

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip

install: $(BIN)/python
	$(BIN)/pip install --quiet -e .

install-test: $(BIN)/python
	$(BIN)/pip install --quiet -e '.[test,tuning]'
	# mistralai 1.x, the SDK major version with fine_tuning.jobs, for its end-to-end test
	[ -d .cache/mistralai-1/mistralai ] || \
	  $(BIN)/pip install --quiet --target .cache/mistralai-1 'mistralai==1.12.4'

serve: install
	$(BIN)/egide serve --host $(HOST) --port $(PORT)

lint: install-test
	$(BIN)/ruff check src tests bench
	$(BIN)/ruff format --check src tests bench
	$(BIN)/mypy
	$(BIN)/lint-imports

test: lint
	./scripts/ensure-postgres
	./scripts/offline-pytest $(BIN)/python -m pytest -q $(PYTEST_ARGS)

docs: install
	$(BIN)/python -m egide.docgen
