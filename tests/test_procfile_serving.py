"""The app served exactly as the Procfile serves it (gunicorn, worker.py and the sandbox
process, each line run through the shell on a free port) over PostgreSQL and real Redis:
64 concurrent initiations all answer 200 within the client's timeout, and every payment settles.

PostgreSQL only, by design: separate processes share the database, as in production. Under
the SQLite run it uses TEST_POSTGRES_URL (the suite's default otherwise); either run gets a
database of its own (<name>_procfile_sqlite, <name>_procfile_pg) so side-by-side runs never meet.
"""

import time

import psycopg
import pytest

from bench.procfile import Procfile, fire, fresh_database
from tests.conftest import DB_ENV, wait_for

CLIENTS = 64
CLIENT_TIMEOUT = 30  # gunicorn's own worker timeout; the web process gives Daraja 15 s (DARAJA_TIMEOUT)


def procfile_database_url() -> str:
    import os

    if DB_ENV.startswith("postgresql"):
        return DB_ENV + "_procfile_pg"
    return os.environ.get("TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/test") + "_procfile_sqlite"


@pytest.fixture
def served(app, worker):
    if not app.config["REDIS_URL"]:
        pytest.fail("the Procfile's processes need a real Redis: set TEST_REDIS_URL")
    worker.pause()  # it shares the Redis db: the Procfile's worker.py does every job here
    url = procfile_database_url()
    secret = "procfile-test-secret-key-not-for-production"
    accounts = fresh_database(url, secret)
    env = {
        "DATABASE_URL": url,
        "REDIS_URL": app.config["REDIS_URL"],
        "SECRET_KEY": secret,
        "SANDBOX": "1",
        "SANDBOX_CALLBACK_DELAY": "1",
        "LOG_LEVEL": "WARNING",
        # one client address sends all 64: the documented per-IP limits are not the subject here
        "CHECKOUT_RATE_LIMIT": "10000 per minute",
        "CHECKOUT_INITIATE_RATE_LIMIT": "10000 per minute",
        # The suite's two runs may serve a Procfile each at once on one PostgreSQL (100 connections):
        # a pool per web worker of 12 (64 clients wait their turn for one) keeps both well inside it.
        "DB_POOL_SIZE": "12",
    }
    procfile = Procfile(env).start()
    try:
        yield procfile, accounts["merchant"]["api_key"], url
    finally:
        procfile.stop()
        worker.resume()


def test_64_concurrent_initiations_answer_and_settle(served):
    procfile, key, url = served
    assert set(procfile.procs) >= {"web", "worker", "sandbox"}

    def initiate(session, i):
        started = time.monotonic()
        answer = session.post(
            procfile.web_url + "/initiate_payment",
            json={"phone": f"25470800{i:04d}", "amount": 100, "account_reference": f"Order{i}"},
            headers={"Authorization": f"Bearer {key}"},
            timeout=CLIENT_TIMEOUT,
        )
        return answer.status_code, time.monotonic() - started, answer.text[:200]

    answers = fire(CLIENTS, initiate, CLIENTS)
    refused = [a for a in answers if a[0] != 200]
    assert not refused, f"{len(refused)} of {CLIENTS} not answered 200, e.g. {refused[:3]}"
    slowest = max(a[1] for a in answers)
    assert slowest < CLIENT_TIMEOUT

    def statuses():
        with psycopg.connect(url) as conn:
            return dict(conn.execute("SELECT status, count(*) FROM payments GROUP BY status").fetchall())

    wait_for(lambda: statuses() == {"completed": CLIENTS}, timeout=90, what=f"{CLIENTS} payments to settle")
    with psycopg.connect(url) as conn:
        applied = conn.execute(
            "SELECT count(DISTINCT payment_id), count(*) FROM payment_events WHERE to_status = 'completed'"
        ).fetchone()
    assert applied == (CLIENTS, CLIENTS)
    for name, proc in procfile.procs.items():
        assert proc.poll() is None, f"{name} died:\n{procfile.log(name)}"
