"""The queueing layer's retries and its dead-letter hook, with real jobs on real Redis: a job
that keeps failing is retried with backoff and filed once; a permanent failure is filed at
once; the same job failing again joins its open row; a hook that cannot write leaves the
worker working; a retry Redis lost goes back to `failed`."""

import subprocess
import sys
import tempfile
from datetime import timedelta

import pytest
from rq import Queue, Worker
from rq.executions import Execution
from rq.job import Job, JobStatus

from portal import ROOT
from portal.extensions import db
from portal.models import DeadLetter, Merchant
from portal.queueing import backoff
from portal.services import dead_letters, sweeper
from portal.timeutil import utcnow
from tests.conftest import wait_for
from tests.helpers import ask_about, settled, stk_payment, worker_env

UNREACHABLE = "http://127.0.0.1:9"  # nothing listens on the discard port: connection refused at once


def only_dead_letter(app) -> DeadLetter:
    with app.app_context():
        (row,) = DeadLetter.query.all()
        db.session.expunge(row)
        return row


def test_a_job_that_always_fails_transiently_is_retried_then_filed_once(app, accounts, live_server):
    merchant_id = accounts["merchant"]["id"]
    # Retries through RQ's scheduler (short waits), against a Daraja nobody answers for.
    app.config.update(JOB_RETRIES=3, JOB_RETRY_BASE=0.01, DARAJA_BASE_URL=UNREACHABLE)
    with app.app_context():
        payment = stk_payment(merchant_id, "PAYDL0001", checkout_request_id="ws_CO_dl_0001")
        payment_id = payment.id
    ask_about(app, payment_id)
    settled(app)

    row = only_dead_letter(app)  # one row, however many attempts failed
    assert row.attempts == 4  # the first and three retries: filed once, after the last
    assert (row.func, row.args, row.queue, row.job_id) == (
        "portal.jobs.query_stk_payment",
        [payment_id],
        "payments",
        f"stk-query-{payment_id}",
    )
    assert (row.payment_id, row.merchant_id) == (payment_id, merchant_id)  # the merchant read from the payment
    assert row.error_type == "DarajaUnavailable" and "could not connect to Daraja" in row.error
    assert "Traceback" in row.traceback and row.status == "failed" and row.retry_count == 0
    job = Job.fetch(f"stk-query-{payment_id}", connection=app.extensions["redis"])
    assert job.get_status() == JobStatus.FAILED and job.retries_left == 0

    # The same job failing for good again adds to its open row: one row per job, not per failure.
    ask_about(app, payment_id)
    settled(app)
    again = only_dead_letter(app)
    assert (again.id, again.attempts, again.created_at) == (row.id, 8, row.created_at)
    assert again.failed_at > row.failed_at


def test_a_permanent_failure_is_filed_at_once_without_retries(app, accounts, live_server):
    app.config.update(JOB_RETRIES=3, JOB_RETRY_BASE=30.0)  # a retry would wait half a minute: none may come
    with app.app_context():
        # Daraja does not know this CheckoutRequestID: it refuses the query (400), as it always will.
        payment_id = stk_payment(accounts["merchant"]["id"], "PAYDL0002", checkout_request_id="ws_CO_unknown").id
    ask_about(app, payment_id)
    settled(app, scheduled=False)

    row = only_dead_letter(app)
    assert row.attempts == 1
    assert row.error_type == "DarajaError"
    assert row.error == "M-Pesa refused the query: 400.002.02: Bad Request - Invalid CheckoutRequestID"
    job = Job.fetch(f"stk-query-{payment_id}", connection=app.extensions["redis"])
    assert job.get_status() == JobStatus.FAILED  # failed, not scheduled for a retry
    assert Queue("payments", connection=app.extensions["redis"]).scheduled_job_registry.get_job_ids() == []


def test_missing_credentials_are_permanent_and_name_the_cause(app, live_server):
    with app.app_context():
        merchant = Merchant(name="No Daraja Yet")
        db.session.add(merchant)
        db.session.commit()
        payment_id = stk_payment(merchant.id, "PAYDL0003", checkout_request_id="ws_CO_dl_0003").id
        merchant_id = merchant.id
    ask_about(app, payment_id)
    settled(app, scheduled=False)

    row = only_dead_letter(app)
    assert (row.attempts, row.merchant_id, row.error_type) == (1, merchant_id, "NotConfigured")
    assert row.error == "M-Pesa credentials are not set up for this merchant"


def test_the_jitter_differs_from_job_to_job(app, accounts, worker, live_server):
    app.config.update(JOB_RETRIES=5, JOB_RETRY_BASE=2.0)
    with app.app_context():
        ids = [
            stk_payment(accounts["merchant"]["id"], f"PAYJIT{n:04d}", checkout_request_id=f"ws_CO_jit_{n}").id
            for n in range(4)
        ]
    worker.pause()  # the jobs are only looked at, never run
    try:
        for payment_id in ids:
            ask_about(app, payment_id)
        connection = app.extensions["redis"]
        schedules = [tuple(Job.fetch(f"stk-query-{i}", connection=connection).retry_intervals) for i in ids]
    finally:
        worker.resume()
    assert len(set(schedules)) == len(ids)  # each job waits its own times
    for schedule in schedules:
        assert len(schedule) == 5
        for i, wait in enumerate(schedule):
            assert 2.0 * 2**i * 0.8 - 0.01 <= wait <= 2.0 * 2**i * 1.2 + 0.01  # exponential, within a fifth


def test_backoff_is_one_interval_per_retry_and_none_without_retries():
    assert backoff(0) is None
    retry = backoff(3, 1.0)
    assert retry.max == 3 and len(retry.intervals) == 3
    assert retry.intervals[0] < retry.intervals[1] < retry.intervals[2]  # 0.8-1.2, 1.6-2.4, 3.2-4.8


def test_a_job_whose_worker_died_under_it_is_filed_by_the_next_workers_clean_up(app, api, accounts, worker):
    merchant_id = accounts["merchant"]["id"]
    with app.app_context():
        payment_id = stk_payment(merchant_id, "PAYDL0005", checkout_request_id="ws_CO_dl_0005").id
    redis = app.extensions["redis"]
    queue = Queue("payments", connection=redis)
    worker.pause()
    try:
        # What a worker leaves behind when it dies mid-job: the job taken off its queue and
        # started, its execution in the started registry, its heartbeat long stopped.
        job = queue.enqueue("portal.jobs.query_stk_payment", payment_id, meta={"payment_id": payment_id})
        queue.remove(job.id)
        with redis.pipeline() as pipe:
            job.set_status(JobStatus.STARTED, pipeline=pipe)
            execution = Execution.create(job, ttl=60, pipeline=pipe)
            pipe.execute()
        redis.zadd(queue.started_job_registry.key, {execution.composite_key: 1})
        # Figures read by the web process leave it alone: its dead letter is the worker's to file.
        stats = api.get("/api/retry-queue/stats").json()["data"]
        assert next(q for q in stats["queues"] if q["name"] == "payments")["started"] == 1
        assert job.get_status(refresh=True) == JobStatus.STARTED
    finally:
        worker.resume()
    settled(app)

    row = only_dead_letter(app)
    assert (row.error_type, row.error) == ("AbandonedJobError", "the worker running it stopped before it finished")
    assert (row.attempts, row.payment_id, row.merchant_id, row.job_id) == (1, payment_id, merchant_id, job.id)
    assert job.get_status(refresh=True) == JobStatus.FAILED


@pytest.fixture
def broken_worker(app, worker, live_server):
    """worker.py whose database cannot be opened: every job fails, and so does every write of
    its dead letter. No retries, so each job is final at its first failure."""
    env = {
        **worker_env(app, live_server, JOB_RETRIES="0"),
        "DATABASE_URL": "sqlite:////nonexistent-directory/portal.db",
    }
    worker.pause()  # this process does the work
    # Its log goes to a file: it logs a traceback per failure, more than a pipe holds unread.
    log = tempfile.NamedTemporaryFile("w+", prefix="worker-", suffix=".log")
    proc = subprocess.Popen([sys.executable, "worker.py"], cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT)
    connection = app.extensions["redis"]
    wait_for(
        lambda: proc.poll() is not None or any(w.pid == proc.pid for w in Worker.all(connection=connection)),
        timeout=60,
        what="worker.py to register with Redis",
    )
    assert proc.poll() is None, open(log.name).read()
    yield proc, log.name
    proc.terminate()
    try:
        proc.wait(timeout=15)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()
    log.close()
    worker.resume()


def test_a_hook_that_cannot_write_leaves_the_worker_working(app, broken_worker):
    proc, log_path = broken_worker
    connection = app.extensions["redis"]
    queue = Queue("payments", connection=connection)
    jobs = [queue.enqueue("portal.jobs.query_stk_payment", n, meta={"payment_id": n}) for n in (1, 2, 3)]

    def all_failed():
        return all(job.get_status(refresh=True) == JobStatus.FAILED for job in jobs)

    wait_for(all_failed, timeout=60, what="the worker to take every job, one after the other")
    assert proc.poll() is None  # still running
    with open(log_path) as f:
        log = f.read()
    for job in jobs:
        assert f"could not record the dead letter of job {job.id}" in log
    with app.app_context():
        assert DeadLetter.query.count() == 0  # nothing written where the worker could not reach


def test_a_retry_redis_lost_goes_back_to_failed(app, accounts, ctx):
    merchant_id = accounts["merchant"]["id"]
    payment = stk_payment(merchant_id, "PAYDL0004", checkout_request_id="ws_CO_dl_0004")
    long_ago = utcnow() - timedelta(minutes=5)
    common = dict(
        merchant_id=merchant_id,
        payment_id=payment.id,
        func="portal.jobs.query_stk_payment",
        args=[payment.id],
        queue="payments",
        error_type="DarajaUnavailable",
        error="could not connect to Daraja",
        status="retrying",
        retry_count=1,
        retried_at=long_ago,
    )
    lost = DeadLetter(job_id="a", fingerprint="lost", **common)
    waiting = DeadLetter(job_id="b", fingerprint="waiting", **common)
    fresh = DeadLetter(job_id="c", fingerprint="fresh", **{**common, "retried_at": utcnow()})
    db.session.add_all([lost, waiting, fresh])
    db.session.commit()
    # The retry of `waiting` still waits in Redis (its backoff); `lost`'s is gone; `fresh` was
    # asked for a moment ago (its job may not be enqueued yet).
    Queue("payments", connection=app.extensions["redis"]).enqueue_in(
        timedelta(minutes=1), "portal.jobs.query_stk_payment", payment.id, job_id=dead_letters.retry_job_id(waiting.id)
    )

    assert sweeper.sweep()["dead_letter_retries_lost"] == 1
    db.session.expire_all()
    assert (lost.status, waiting.status, fresh.status) == ("failed", "retrying", "retrying")
