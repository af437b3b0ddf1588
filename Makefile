# The two front-door commands (README): `make demo` and `make test`. Both set up everything first.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
DEMO_USERS ?= 5000

export PREFECT_SERVER_ANALYTICS_ENABLED ?= false

$(VENV)/.installed: requirements.txt
	$(PYTHON) -m venv $(VENV)
	$(VENV)/bin/pip install --quiet --upgrade pip
	$(VENV)/bin/pip install --quiet -r requirements.txt
	touch $@

.PHONY: setup demo test
setup: $(VENV)/.installed

# A fresh demo library in the embedded default database, then the nightly purge: dry run, real run.
demo: setup
	rm -f data/library.db data/library.db-wal data/library.db-shm
	$(PY) -m flows init-db
	$(PY) -m flows demo-data --users $(DEMO_USERS) --seed 42
	$(PY) -m flows purge --grace-period-days 30
	$(PY) -m flows purge --grace-period-days 30 --max-share 0.25 --confirm
	$(PY) -m flows history

test: setup
	$(PY) -m pytest -q -n 2 $(PYTEST_ARGS)
