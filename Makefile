# The two commands: `make run` and `make test`. Everything else is what they need.
VENV   ?= .venv
PY     := $(VENV)/bin/python
FLASK  := $(VENV)/bin/flask --app wsgi
PYTHON ?= python3
PORT   ?= 5000

.PHONY: run test lint bench install clean

install: $(VENV)/.installed

$(VENV)/.installed: requirements.txt requirements-dev.txt
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -r requirements.txt -r requirements-dev.txt
	touch $@

.env:
	@echo "SECRET_KEY=$$($(PYTHON) -c 'import secrets; print(secrets.token_urlsafe(48))')" > .env
	@echo "created .env with a fresh SECRET_KEY"

run: install .env
	mkdir -p instance
	$(FLASK) db upgrade
	$(FLASK) seed-demo
	$(FLASK) serve --host 127.0.0.1 --port $(PORT)

test: install
	bash scripts/test.sh

bench: install
	$(PY) bench/ledger_paging.py
	$(PY) bench/callback_ingest.py
	$(PY) bench/stk_initiation.py
	$(PY) bench/sse_streams.py

lint: install
	$(VENV)/bin/ruff check portal tests bench worker.py wsgi.py sandbox_wsgi.py gunicorn.conf.py
	$(VENV)/bin/ruff format --check portal tests bench worker.py wsgi.py sandbox_wsgi.py gunicorn.conf.py

clean:
	rm -rf $(VENV) instance .pytest_cache
