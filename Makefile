# The two commands: `make lab` opens the workbook, `make test` runs every test.
# Each creates the virtual environments it needs on first use (a stamp file per venv
# records the install; editing pyproject.toml redoes it):
#   .venv-learner  what a learner gets: `.[lab]` (make lab; make test adds nbval and runs
#                  every notebook here, proving the learner's install runs them)
#   .venv          a developer's tool chain: `.[dev]` (lint, types, unit tests)
#   .venv-compat   the dependency floors of pyproject.toml, exactly (make compat)
#   .venv-book     Jupyter Book 1.x, which builds the course book offline (make book)

PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.edalab-installed
LEARNER       := .venv-learner
LEARNER_STAMP := $(LEARNER)/.edalab-installed
NBVAL_STAMP   := $(LEARNER)/.nbval-installed
COMPAT        := .venv-compat
COMPAT_STAMP  := $(COMPAT)/.edalab-installed
BOOKENV       := .venv-book
BOOK_STAMP    := $(BOOKENV)/.edalab-installed
# make lab NOTEBOOKS=dist/student opens the student copies (make student) instead.
NOTEBOOKS ?= notebooks
ROOT_FLAG := $(if $(filter 0,$(shell id -u)),--allow-root,)
# Notebook tests run each kernel with its own embedded server, whatever the shell has set
# (a class env file too).
NB_ENV := env -u NATS_URL -u EDALAB_CLASS EDALAB_STATE_DIR=$(CURDIR)/.state/nbtest
# The learner venv has no pytest plugins but nbval: tests/nbval.ini replaces the
# developers' pytest settings, and edalab's own fixture plugin stays off.
NBVAL  := -c tests/nbval.ini --rootdir=. -p no:edalab \
          --nbval --nbval-current-env --nbval-sanitize-with tests/nbval_sanitize.cfg \
          --nbval-cell-timeout 120 -p no:cacheprovider
# The library's tests (they need neither the workbook's packages nor the developer tools),
# run on the floors. The course's own tests (checkers, workshop, charts) need the learner's
# set and run in `unit` and `suites`.
COMPAT_TESTS := tests/unit/test_api.py tests/cluster/test_cluster.py \
          $(addprefix tests/unit/test_,$(addsuffix .py,events subjects versioning)) \
          $(addprefix tests/server/test_,$(addsuffix .py,events_live subjects_live versioning_live \
          publishing consuming streams idempotency deadletters security secrets server))

.PHONY: lab test install learner compat-install book-install lint unit suites compat \
        notebooks-test notebooks student book server-stop clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)

$(STAMP): pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e ".[dev]"
	touch $(STAMP)

install: $(STAMP)

# The learner's set is the `lab` extra, and only that (as Binder, the dev container and
# environment.yml install it; tests/packaging/test_packaging.py checks). nbval comes on top, for
# `make test` alone.
$(LEARNER_STAMP): pyproject.toml
	$(PYTHON) -m venv $(LEARNER)
	$(LEARNER)/bin/python -m pip install --quiet --upgrade pip
	$(LEARNER)/bin/python -m pip install --quiet -e ".[lab]"
	touch $(LEARNER_STAMP)

$(NBVAL_STAMP): $(LEARNER_STAMP)
	$(LEARNER)/bin/python -m pip install --quiet "nbval>=0.11" "pytest-xdist>=3.6"
	touch $(NBVAL_STAMP)

learner: $(LEARNER_STAMP)

$(COMPAT_STAMP): pyproject.toml tools/floors.py
	$(PYTHON) -m venv $(COMPAT)
	$(COMPAT)/bin/python -m pip install --quiet --upgrade pip
	$(PYTHON) tools/floors.py test > $(COMPAT)/floors.txt
	$(COMPAT)/bin/python -m pip install --quiet -r $(COMPAT)/floors.txt
	$(COMPAT)/bin/python -m pip install --quiet --no-deps -e .
	touch $(COMPAT_STAMP)

compat-install: $(COMPAT_STAMP)

$(BOOK_STAMP): pyproject.toml
	$(PYTHON) -m venv $(BOOKENV)
	$(BOOKENV)/bin/python -m pip install --quiet --upgrade pip
	$(BOOKENV)/bin/python -m pip install --quiet -e ".[book]"
	touch $(BOOK_STAMP)

book-install: $(BOOK_STAMP)

## make lab: the learner's install, make sure a nats-server runs, open JupyterLab on notebooks/
lab: learner
	$(LEARNER)/bin/edalab server ensure
	PYTHONSTARTUP=$(CURDIR)/src/edalab/course/startup.py \
	  $(LEARNER)/bin/jupyter lab --ServerApp.root_dir=$(NOTEBOOKS) $(ROOT_FLAG)

## make test: lint, types, unit tests, the other suites (book and browser included), the floors,
## every notebook
test: install lint unit suites compat notebooks-test

lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy

## make unit: tests/unit (no server, no kernel, no venv: seconds) and the library's doctests
unit: install
	$(BIN)/python -m pytest tests/unit src/edalab --doctest-modules -q

## make suites: every other folder of tests/ (server, faults, cluster, class, browser, book,
## packaging, notebooks; each folder's name is its tests' marker, e.g. -m "not faults"). Two
## tests at a time (pytest-xdist; each worker has its own session server and state directory),
## the notebook tests two at a time: each is a kernel with its own server that mostly waits.
## The fault and cluster tests (kill -9, leader elections, a leaf link cut) run one at a time:
## their timings are the point. (Everything four at a time in one run is two minutes
## faster, but a 3-node cluster then starts too slowly for notebook 13's first R3 stream.)
suites: install book-install
	$(BIN)/python -m pytest tests -m "not unit and not notebooks and not faults and not cluster" -q -n 2
	$(BIN)/python -m pytest tests -m "faults or cluster" -q
	$(BIN)/python -m pytest tests/notebooks -q -n 2

## make compat: the library's unit tests on the oldest versions pyproject.toml allows
compat: compat-install
	@cat $(COMPAT)/floors.txt | tr '\n' ' '; echo
	env -u NATS_URL $(COMPAT)/bin/python -m pytest $(COMPAT_TESTS) -q -p no:cacheprovider

## the notebooks under strict nbval, in the learner's venv: its install alone runs them. Three
## notebooks at a time (pytest-xdist; --dist loadscope keeps a notebook's cells in order on one
## kernel), each worker with a server of its own (tests/nbval_workers.py).
notebooks-test: $(NBVAL_STAMP)
	rm -rf .state/nbtest
	$(NB_ENV) PYTHONPATH=tests $(LEARNER)/bin/python -m pytest notebooks/*.ipynb $(NBVAL) -q \
	  -p nbval_workers -n 3 --dist loadscope

## make notebooks: re-execute the notebook sources in tools/notebooks and store the outputs
notebooks: install
	$(NB_ENV) $(BIN)/python tools/build_notebooks.py $(NB)

## make student: copies without solutions, exercise outputs cleared, in dist/student/;
## the learner's install is enough, and a copy holding answers is kept (make student FORCE=1
## writes over it)
student: learner
	$(LEARNER)/bin/python tools/make_student.py dist/student $(if $(FORCE),--force,)

## make book: the static course book from the committed notebooks, in dist/book/
book: book-install
	$(BOOKENV)/bin/python tools/build_book.py dist/book

server-stop:
	-$(LEARNER)/bin/edalab server stop

clean:
	rm -rf $(VENV) $(LEARNER) $(COMPAT) $(BOOKENV) .state build dist src/*.egg-info \
	       .pytest_cache .mypy_cache .ruff_cache
