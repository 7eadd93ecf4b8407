"""worker.py, the production worker, as its own process: scheduler, sweeper and jobs."""
import os
import subprocess
import sys

import pytest

from portal import ROOT
from tests.conftest import wait_for
from tests.helpers import events, initiate


@pytest.fixture
def worker_process(app, worker, live_server):
    if not app.config["REDIS_URL"]:
        pytest.fail("worker.py needs a real Redis: set TEST_REDIS_URL")
    worker.pause()  # the separate process does all the work in this test
    env = dict(os.environ, DATABASE_URL=app.config["SQLALCHEMY_DATABASE_URI"], REDIS_URL=app.config["REDIS_URL"],
               SECRET_KEY=app.config["SECRET_KEY"], PUBLIC_BASE_URL=live_server, SWEEP_INTERVAL="0.5",
               SWEEP_QUERY_AFTER="3", SWEEP_QUERY_EVERY="1", SANDBOX_CALLBACK_DELAY="0.3", LOG_LEVEL="WARNING")
    proc = subprocess.Popen([sys.executable, "worker.py"], cwd=ROOT, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    yield proc
    proc.terminate()
    try:
        proc.wait(timeout=15)
    except subprocess.TimeoutExpired:
        proc.kill()
    worker.resume()


def test_worker_process_delivers_callbacks_and_sweeps(app, api, worker_process):
    paid = initiate(api, phone="254708374149").json()["data"]["checkout_request_id"]
    lost = initiate(api, phone="254712349999").json()["data"]["checkout_request_id"]
    for checkout_id, source in ((paid, "callback"), (lost, "query")):
        tx = wait_for(lambda c=checkout_id: (t := api.get(f"/transactions/{c}").json())["status"] != "PENDING" and t,
                      timeout=30, what=f"{checkout_id} to settle through worker.py")
        assert tx["status"] == "SUCCESS"
        assert events(app, checkout_id)[-1] == ("processing", "completed", source)
    assert worker_process.poll() is None, worker_process.stdout.read()
