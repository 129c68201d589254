# The two commands: `make lab` opens the workbook, `make test` runs every test.
# Both create .venv and install edalab with its extras on first use.

PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.edalab-installed
ROOT_FLAG := $(if $(filter 0,$(shell id -u)),--allow-root,)
# Notebook tests run each kernel with its own embedded server, whatever the shell has set.
NB_ENV := env -u NATS_URL EDALAB_STATE_DIR=$(CURDIR)/.state/nbtest
NBVAL  := --nbval --nbval-current-env --nbval-sanitize-with tests/nbval_sanitize.cfg \
          --nbval-cell-timeout 120 -p no:cacheprovider

.PHONY: lab test install lint unit notebooks-test notebooks student server-stop clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)

$(STAMP): pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e ".[dev]"
	touch $(STAMP)

install: $(STAMP)

## make lab: install, make sure a nats-server runs, open JupyterLab on notebooks/
lab: install
	$(BIN)/edalab server ensure
	$(BIN)/jupyter lab --ServerApp.root_dir=notebooks $(ROOT_FLAG)

## make test: install, lint, type-check, unit tests, every notebook under strict nbval
test: install lint unit notebooks-test

lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy

unit: install
	$(BIN)/python -m pytest tests src/edalab --doctest-modules -q

notebooks-test: install
	rm -rf .state/nbtest
	$(NB_ENV) $(BIN)/python -m pytest notebooks/*.ipynb $(NBVAL) -q

## make notebooks: re-execute the notebook sources in tools/notebooks and store the outputs
notebooks: install
	$(NB_ENV) $(BIN)/python tools/build_notebooks.py $(NB)

## make student: copies without solutions, exercise outputs cleared, in dist/student/
student: install
	$(BIN)/python tools/make_student.py dist/student

server-stop:
	-$(BIN)/edalab server stop

clean:
	rm -rf $(VENV) .state build dist src/*.egg-info .pytest_cache .mypy_cache .ruff_cache
