"""worker.py, the production worker, as its own process: scheduler, sweeper and jobs."""

import subprocess
import sys
from datetime import timedelta

import pytest
from rq import Worker

from portal import ROOT
from portal.extensions import db
from portal.models import Payment
from tests.conftest import wait_for
from tests.helpers import events, initiate, sandbox_request, worker_env


@pytest.fixture
def worker_process(app, worker, live_server):
    # The sweeper queries only payments older than a minute: the test makes one that old on
    # purpose, so a slow callback on a busy machine is never overtaken by a query.
    env = worker_env(
        app,
        live_server,
        SWEEP_INTERVAL="0.5",
        SWEEP_QUERY_AFTER="60",
        SWEEP_QUERY_EVERY="1",
        SANDBOX_CALLBACK_DELAY="0.3",
    )
    worker.pause()  # the separate process does all the work in this test
    proc = subprocess.Popen(
        [sys.executable, "worker.py"], cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    )
    connection = app.extensions["redis"]
    wait_for(
        lambda: proc.poll() is not None or any(w.pid == proc.pid for w in Worker.all(connection=connection)),
        timeout=60,
        what="worker.py to register with Redis",
    )
    assert proc.poll() is None, proc.stdout.read()
    yield proc
    proc.terminate()
    try:
        proc.wait(timeout=15)
    except subprocess.TimeoutExpired:
        proc.kill()
    worker.resume()


def settled_status(api, checkout_id):
    tx = api.get(f"/transactions/{checkout_id}").json()
    return tx["status"] != "PENDING" and tx["status"]


def test_worker_process_delivers_callbacks_and_sweeps(app, api, worker_process):
    paid = initiate(api, phone="254708374149").json()["data"]["checkout_request_id"]
    assert wait_for(lambda: settled_status(api, paid), timeout=60, what="the callback through worker.py") == "SUCCESS"
    assert events(app, paid)[-1] == ("processing", "completed", "callback")

    lost = initiate(api, phone="254712349999").json()["data"]["checkout_request_id"]  # its callback never comes
    wait_for(
        lambda: sandbox_request(app, lost).result_code is not None,
        timeout=60,
        what="the simulator to settle the prompt whose callback is lost",
    )
    with app.app_context():  # silent for long enough: the sweeper in worker.py asks Daraja about it
        payment = Payment.query.filter_by(checkout_request_id=lost).one()
        payment.created_at -= timedelta(minutes=2)
        db.session.commit()
    assert (
        wait_for(lambda: settled_status(api, lost), timeout=60, what="the sweeper's query through worker.py")
        == "SUCCESS"
    )
    assert events(app, lost)[-1] == ("processing", "completed", "query")
    assert worker_process.poll() is None, worker_process.stdout.read()
