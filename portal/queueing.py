"""Queue infrastructure: the Redis connection, purpose-named RQ queues, enqueue-after-commit,
and the workers (the `worker.py` process, or a thread in embedded mode and tests).

Jobs are idempotent and keyed by database ids; Redis may lose everything, the sweeper
re-derives lost work from the database.
"""
import logging
import random
import threading
import time
from datetime import timedelta

import redis
from flask import Flask, current_app
from flask_sqlalchemy.session import Session
from rq import Queue, Retry, SimpleWorker
from rq.exceptions import DuplicateJobError, NoSuchJobError
from rq.job import Job, JobStatus
from rq.timeouts import TimerDeathPenalty
from sqlalchemy import event

from portal.embedded import EmbeddedValkey

log = logging.getLogger(__name__)

QUEUES = ("callbacks", "payments", "sandbox", "sms", "payouts", "sweeper", "default")
# Periodic jobs: stable job id -> (function path, queue, config key holding the interval).
PERIODIC = {"sweep": ("portal.jobs.sweep", "sweeper", "SWEEP_INTERVAL")}
_LIVE = (JobStatus.QUEUED, JobStatus.SCHEDULED, JobStatus.STARTED, JobStatus.DEFERRED)


def init_app(app: Flask) -> None:
    if app.config["REDIS_URL"]:
        connection = redis.Redis.from_url(app.config["REDIS_URL"])
    else:  # embedded mode: this process's own Valkey server, started by the first command
        server = EmbeddedValkey()
        app.extensions["embedded_valkey"] = server
        connection = server.client()
    app.extensions["redis"] = connection


def get_redis() -> redis.Redis:
    return current_app.extensions["redis"]


def get_queue(name: str) -> Queue:
    return Queue(name, connection=get_redis())


def backoff(attempts: int = 5, base: float = 2.0) -> Retry:
    """Exponential backoff with jitter: about 2, 4, 8, 16, 32 seconds."""
    return Retry(max=attempts, interval=[round(base * 2**i * random.uniform(0.8, 1.2), 1) for i in range(attempts)])


def enqueue(func: str, *args, queue: str = "default", job_id: str | None = None,
            delay: float | None = None, retry: bool = True) -> None:
    """Enqueues `func(*args)` once the current database transaction commits.

    With a `job_id`, a job still waiting or running under that id absorbs this one.
    A rollback drops the job along with the rows it would have needed.
    """
    pending = current_app.extensions.setdefault("_pending", threading.local())
    jobs = getattr(pending, "jobs", None)
    if jobs is None:
        jobs = pending.jobs = []
    jobs.append((current_app._get_current_object(), func, args, queue, job_id, delay, retry))


def _flush(session) -> None:
    from flask import has_app_context

    if not has_app_context():
        return
    pending = current_app.extensions.get("_pending")
    jobs = getattr(pending, "jobs", None) if pending else None
    if not jobs:
        return
    pending.jobs = []
    for app, func, args, queue, job_id, delay, retry in jobs:
        try:
            _send(app, func, args, queue, job_id, delay, retry)
        except Exception:  # the commit stands; the sweeper re-derives the work from the database
            log.exception("could not enqueue %s%r", func, args)


def _discard(session, _previous_transaction) -> None:
    from flask import has_app_context

    if has_app_context():
        pending = current_app.extensions.get("_pending")
        if pending is not None:
            pending.jobs = []


event.listen(Session, "after_commit", _flush)
event.listen(Session, "after_soft_rollback", _discard)


def _send(app, func, args, queue, job_id, delay, retry) -> None:
    q = Queue(queue, connection=app.extensions["redis"])
    options = {"job_id": job_id, "retry": backoff() if retry else None,
               "result_ttl": 0 if job_id else 500, "failure_ttl": 7 * 86400}
    for _attempt in range(2):  # a second go when the old job vanished under us
        try:
            if delay:
                q.enqueue_in(timedelta(seconds=delay), func, *args, unique=bool(job_id), **options)
            else:
                q.enqueue(func, *args, unique=bool(job_id), **options)
            return
        except DuplicateJobError:
            try:
                existing = Job.fetch(job_id, connection=q.connection)
            except NoSuchJobError:
                continue
            if existing.get_status(refresh=False) in _LIVE:
                return
            existing.delete()  # a finished or failed job under this id must not block new work


def enqueue_periodic(app: Flask, last_run: dict) -> None:
    """Enqueues each periodic job whose interval has passed; stable ids collapse duplicates
    when several workers tick at once."""
    now = time.monotonic()
    for job_id, (func, queue, interval_key) in PERIODIC.items():
        if now - last_run.get(job_id, 0) >= float(app.config[interval_key]):
            last_run[job_id] = now
            _send(app, func, (), queue, job_id, None, False)


class AppWorker(SimpleWorker):
    """Runs each job inside an app context; jobs run in this process (one app, one pool)."""

    flask_app: Flask | None = None

    def execute_job(self, job, queue):
        with self.flask_app.app_context():
            return super().execute_job(job, queue)


class ThreadWorker(AppWorker):
    """An AppWorker that can live in a thread: no signals."""

    death_penalty_class = TimerDeathPenalty

    def _install_signal_handlers(self):
        pass


class BackgroundWorker:
    """The in-process worker of embedded mode and of the tests: the same RQ jobs, the same
    scheduler, in a thread that works in short bursts. `pause()` returns once no burst is
    running and none will start, so tests can truncate tables with no job half-done."""

    def __init__(self, app: Flask, poll: float = 0.05):
        self.app = app
        self.poll = poll
        self._stop = threading.Event()
        self._paused = threading.Event()
        self._burst = threading.Lock()
        self._thread = threading.Thread(target=self._run, name="background-worker", daemon=True)
        self._last_periodic: dict = {}

    def start(self) -> "BackgroundWorker":
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=30)

    def pause(self) -> None:
        self._paused.set()
        with self._burst:  # waits for the running burst; the next one sees the flag
            pass

    def resume(self) -> None:
        self._last_periodic.clear()
        self._paused.clear()

    def _run(self) -> None:
        connection = self.app.extensions["redis"]
        queues = [Queue(name, connection=connection) for name in QUEUES]
        while not self._stop.is_set():
            with self._burst:
                if not self._paused.is_set():
                    self._work_once(queues, connection)
            time.sleep(self.poll)

    def _work_once(self, queues, connection) -> None:
        try:
            enqueue_periodic(self.app, self._last_periodic)
            worker = ThreadWorker(queues, connection=connection)
            worker.flask_app = self.app
            worker.work(burst=True, with_scheduler=True, logging_level="WARNING")
        except Exception:  # keep the thread alive; RQ records each job's own failure
            log.exception("background worker burst failed")
