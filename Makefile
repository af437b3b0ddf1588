# The two front-door commands (README): `make demo` and `make test`. Both set up everything first. `make docs`: the manual.
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

.PHONY: setup demo test test-fast test-browser lint docs
setup: $(VENV)/.installed

# A fresh demo library in the embedded default database, then the nightly purge: dry run, real run.
demo: setup
	rm -f data/library.db data/library.db-wal data/library.db-shm
	$(PY) -m flows init-db
	$(PY) -m flows demo-data --users $(DEMO_USERS) --seed 42
	$(PY) -m flows purge --grace-period-days 30
	$(PY) -m flows purge --grace-period-days 30 --max-share 0.25 --confirm
	$(PY) -m flows history

# The import directions of .importlinter (jobs use the engine, the engine uses no job, rules use no database).
lint: setup
	$(VENV)/bin/lint-imports

# The whole suite: the README's test command and CI's.
test: setup lint
	$(PY) -m pytest -q -n 2 --dist loadfile $(PYTEST_ARGS)

# The pure rules and unit tests, no database server and no Prefect: under a minute.
FAST_TESTS := tests/test_purge_rules.py tests/test_waive_rules.py tests/test_merge_rules.py tests/test_outcome.py \
	tests/test_cli_generation.py tests/reliability/test_rules_properties.py
test-fast: setup lint
	$(PY) -m pytest -q -p no:cacheprovider $(FAST_TESTS) $(PYTEST_ARGS)

# The Prefect UI in a real browser (Debian's /usr/bin/chromium): form, dry run, approval. Part of `make test`;
# screenshots in build/browser-shots/.
test-browser: setup
	$(PY) -m pytest -q -p no:cacheprovider tests/e2e/test_browser.py $(PYTEST_ARGS)

# The manual (docs/, mkdocs.yml) as a site in build/site/; --strict fails on a broken link or heading.
docs: setup
	$(VENV)/bin/mkdocs build --strict
