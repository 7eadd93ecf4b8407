"""Fixtures in flaskr's shape: one app from create_app() with its schema from the real
migrations, a live server and the in-process worker (the same RQ jobs, over real Redis)
started by the first test that needs them, tables emptied after writes and the Redis test
db flushed between tests."""

import atexit
import copy
import os
import re
import shutil
import tempfile
import threading
import time

import psycopg
import pytest
import requests
from flask_migrate import upgrade
from sqlalchemy import event, text
from werkzeug.serving import make_server

from portal import create_app
from portal.extensions import db, limiter
from portal.queueing import BackgroundWorker
from portal.services.merchants import seed_demo

# Under pytest-xdist (`-n N`) each worker process gets a database and a Redis db of its own:
# worker gwK takes the PostgreSQL database `<name>_gwK` and the Redis db K×2 below the one given,
# so the SQLite and PostgreSQL runs that scripts/test.sh starts side by side never share one.
WORKER = os.environ.get("PYTEST_XDIST_WORKER", "")
_INDEX = int(WORKER[2:]) if WORKER.startswith("gw") else 0


def _own_database(url: str) -> str:
    if not WORKER:
        return url
    own = f"{url}_{WORKER}"
    name = own.rpartition("/")[2]
    with psycopg.connect(url, autocommit=True) as conn:
        if not conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,)).fetchone():
            conn.execute(f'CREATE DATABASE "{name}"')
        # a worker's own database holds nothing worth an fsync per commit (a crash loses only the run)
        conn.execute(f'ALTER DATABASE "{name}" SET synchronous_commit = off')
    return own


def _own_redis(url: str) -> str:
    base, _, number = url.rpartition("/")
    return f"{base}/{int(number) - 2 * _INDEX}" if url and number.isdigit() else url


DB_ENV = os.environ.get("TEST_DATABASE_URL", "sqlite")
REDIS_URL = _own_redis(os.environ.get("TEST_REDIS_URL", "redis://127.0.0.1:6379/15"))
# SQLite's database in memory-backed /dev/shm where there is one: no fsync on each commit
_tmp = tempfile.mkdtemp(prefix="portal-tests-", dir="/dev/shm" if os.path.isdir("/dev/shm") else None)
atexit.register(shutil.rmtree, _tmp, True)
DATABASE_URL = f"sqlite:///{_tmp}/test.db" if DB_ENV == "sqlite" else _own_database(DB_ENV)

TEST_CONFIG = {
    "SQLALCHEMY_DATABASE_URI": DATABASE_URL,
    "REDIS_URL": REDIS_URL,
    "SECRET_KEY": "test-secret-key",
    "ENCRYPTION_KEY": "",
    "SANDBOX": True,
    # simulators answer at once (a delayed job waits for RQ's whole-second scheduler); tests about order set their own
    "SANDBOX_CALLBACK_DELAY": 0.0,
    "RATELIMIT_ENABLED": True,  # initialised, then switched off below; limit tests switch it on
    "SWEEP_INTERVAL": 3600.0,  # tests about the sweeper shorten it
    "LOG_LEVEL": "WARNING",
    "PASSWORD_HASH_METHOD": "pbkdf2:sha256:1",  # scrypt per seeded user would cost seconds
    "EVENTS_STREAM_LIFETIME": 1.0,  # a guard that reads an event stream to its end waits a second, not minutes
}


def _reset_schema(app) -> None:
    with app.app_context():
        if db.engine.dialect.name == "postgresql":
            db.session.execute(text("DROP SCHEMA public CASCADE; CREATE SCHEMA public"))
            db.session.commit()
        upgrade()


_running: dict = {}  # the session's worker once a test has asked for the live server
_dirty = threading.Event()  # set by any write to the database since the last clean-up


def _note_writes(_conn, _cursor, statement, *_args) -> None:
    if not _dirty.is_set() and statement.lstrip()[:6].upper() in ("INSERT", "UPDATE", "DELETE"):
        _dirty.set()


@pytest.fixture(scope="session")
def app():
    app = create_app(dict(TEST_CONFIG))
    limiter.enabled = False
    _reset_schema(app)
    with app.app_context():
        event.listen(db.engine, "before_cursor_execute", _note_writes)
    _dirty.set()
    return app


@pytest.fixture(scope="session")
def _http_server(app):
    server = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    url = f"http://127.0.0.1:{server.server_port}"
    app.config["PUBLIC_BASE_URL"] = url
    yield url
    server.shutdown()


@pytest.fixture(scope="session")
def worker(app, _http_server):
    worker = BackgroundWorker(app).start()
    _running["worker"] = worker
    yield worker
    _running.pop("worker")
    worker.stop()


@pytest.fixture(scope="session")
def live_server(_http_server, worker):
    """The app over real HTTP with the in-process worker behind it; started by the first test that asks."""
    return _http_server


@pytest.fixture(autouse=True)
def clean(app):
    """Every test starts from empty tables, an empty Redis db and the session's config.
    Tables are emptied only when something was written; tests that need neither the live
    server nor the worker do not start them."""
    worker = _running.get("worker")
    if worker:
        worker.pause()
    saved = dict(app.config)
    if _dirty.is_set():
        with app.app_context():
            # DELETE, children first: on tables this small it costs ~6 ms against TRUNCATE's ~65 ms
            # on PostgreSQL, over several hundred tests. Ids go on counting (no test relies on them).
            children_first = list(reversed(db.metadata.sorted_tables))
            if db.engine.dialect.name == "postgresql":  # every DELETE in one round trip: 5 ms -> 1.8 ms
                db.session.execute(text(";".join(f'DELETE FROM "{t.name}"' for t in children_first)))
            else:  # SQLite takes one statement at a time
                for table in children_first:
                    db.session.execute(table.delete())
            db.session.commit()
        _dirty.clear()
    app.extensions["redis"].flushdb()
    if worker:
        worker.resume(look=False)  # the Redis db is empty: nothing to clean up or run
    yield
    worker = _running.get("worker")
    if worker:
        worker.pause()
    app.config.clear()
    app.config.update(saved)
    limiter.enabled = False
    if worker:
        worker.resume(look=False)  # what the test left, the next setup empties


@pytest.fixture
def limits_on():
    """The rate limits on, with empty budgets (the clean-up switches them off again)."""
    limiter.enabled = True
    limiter.reset()
    yield
    limiter.reset()


@pytest.fixture
def ctx(app):
    with app.app_context():
        yield
        db.session.remove()


_seeded: dict = {}  # seed_demo()'s run on empty tables: the config it ran under, its accounts, every row it wrote
# What seed_demo() writes depends on: the Paystack simulator's webhook URL is under PUBLIC_BASE_URL
# (set once the live server starts), the secrets are encrypted with ENCRYPTION_KEY.
SEED_CONFIG = ("PUBLIC_BASE_URL", "SANDBOX", "ENCRYPTION_KEY")


@pytest.fixture
def accounts(app):
    """The demo accounts (seed_demo()). seed_demo() runs on empty tables once per configuration
    it depends on (SEED_CONFIG), and the rows it wrote are kept; later tests that start from
    empty tables under that configuration get those rows back by one INSERT per table (a few ms,
    where seeding cost 40 to 130 ms a test, for most of the suite). Ids and secrets are the same
    every time; a test whose tables are not empty seeds for real."""
    config = tuple(app.config.get(name) for name in SEED_CONFIG)
    with app.app_context():
        if _dirty.is_set() or _seeded.get("config") != config:  # seed for real
            was_empty = not _dirty.is_set()
            out = seed_demo()
            if was_empty:
                rows = {t.name: db.session.execute(t.select()).mappings().all() for t in db.metadata.sorted_tables}
                _seeded.update(
                    config=config, accounts=out, rows={name: [dict(r) for r in found] for name, found in rows.items()}
                )
            return copy.deepcopy(out)
        for table in db.metadata.sorted_tables:  # parents first
            if _seeded["rows"][table.name]:
                db.session.execute(table.insert(), _seeded["rows"][table.name])
        db.session.commit()
        return copy.deepcopy(_seeded["accounts"])


class Api:
    """A requests session against the live server with a merchant's bearer key."""

    def __init__(self, base: str, key: str | None):
        self.base = base
        self.http = requests.Session()
        if key:
            self.http.headers["Authorization"] = f"Bearer {key}"

    def get(self, path, **kw):
        return self.http.get(self.base + path, timeout=30, **kw)

    def post(self, path, **kw):
        return self.http.post(self.base + path, timeout=30, **kw)


@pytest.fixture
def api(live_server, accounts):
    return Api(live_server, accounts["merchant"]["api_key"])


@pytest.fixture
def other_api(live_server, accounts):
    return Api(live_server, accounts["other_merchant"]["api_key"])


@pytest.fixture
def client(app):
    return app.test_client()


@pytest.fixture
def runner(app):
    return app.test_cli_runner()


def wait_for(predicate, timeout: float = 15.0, every: float = 0.1, what: str = "condition"):
    """Polls until predicate() is truthy and returns its value; fails after `timeout` s."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(every)
    raise AssertionError(f"timed out after {timeout}s waiting for {what}")


def csrf_token_in(page: str) -> str:
    """The CSRF token of the (first) form in a page's HTML."""
    return re.search(r'name="csrf_token"[^>]*value="([^"]+)"', page).group(1)


class AuthActions:
    """Signs in through the real form, CSRF token and all."""

    def __init__(self, client):
        self.client = client

    def csrf_token(self, path="/login") -> str:
        return csrf_token_in(self.client.get(path).get_data(as_text=True))

    def login(self, email, password):
        token = self.csrf_token()
        return self.client.post("/login", data={"email": email, "password": password, "csrf_token": token})


@pytest.fixture
def auth(client):
    return AuthActions(client)


def pytest_xdist_node_collection_finished(node, ids):
    """xdist groups the browser tests (tests/browser/conftest.py) by a suffix it writes into their
    nodeids; pytest 9.2 ignores that write (pytest-xdist#1386) and they would spread over every
    process, one Chromium each, without a word. Stop with one instead."""
    if node.config.getvalue("dist") == "loadgroup":
        spread = [i for i in ids if i.startswith("tests/browser/") and "@" not in i]
        if spread:
            pytest.exit(f"xdist lost the browser group ({spread[0]}): see pytest's pin in requirements-dev.txt", 3)
