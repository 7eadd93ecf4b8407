"""Queue infrastructure: the Redis connection, purpose-named RQ queues, enqueue-after-commit,
retries with backoff and jitter, the dead-letter hook, and the workers (the `worker.py`
process, or a thread in embedded mode and tests).

Jobs are idempotent and keyed by database ids; Redis may lose everything, the sweeper
re-derives lost work from the database, and a job that fails for good is a DeadLetter row.
"""

import logging
import os
import random
import threading
import time
from datetime import timedelta

import redis
from flask import Flask, current_app
from flask_sqlalchemy.session import Session
from redis.backoff import ExponentialBackoff
from redis.retry import Retry as RedisRetry
from rq import Queue, Retry, SimpleWorker
from rq.exceptions import DuplicateJobError, NoSuchJobError
from rq.job import Job, JobStatus
from rq.registry import ScheduledJobRegistry
from rq.scheduler import RQScheduler
from rq.scripts import acquire_or_refresh_lock, release_lock
from rq.timeouts import TimerDeathPenalty
from rq.utils import now
from sqlalchemy import event

from portal.embedded import EmbeddedValkey

log = logging.getLogger(__name__)

QUEUES = ("callbacks", "payments", "sandbox", "sms", "payouts", "sweeper", "default")
# Periodic jobs: stable job id -> (function path, queue, config key holding the interval).
REDIS_CONNECT_TIMEOUT = 2.0  # seconds to connect: Redis is on the local network or nowhere
REDIS_SOCKET_TIMEOUT = 5.0  # seconds for an answer (RQ raises it for its own blocking pops)
PERIODIC = {"sweep": ("portal.jobs.sweep", "sweeper", "SWEEP_INTERVAL")}
_LIVE = (JobStatus.QUEUED, JobStatus.SCHEDULED, JobStatus.STARTED, JobStatus.DEFERRED)


def redis_client(url: str) -> redis.Redis:
    """The app's Redis client. redis-py's defaults retry a failed command three times with
    backoff, about 4 s before it gives up: with Redis away, every request would hang that long
    per command. Here a command that cannot reach Redis fails within about a second (a blip of
    a few hundred ms is ridden over), and what needed it is picked up again by the sweeper."""
    return redis.Redis.from_url(
        url,
        socket_connect_timeout=REDIS_CONNECT_TIMEOUT,
        socket_timeout=REDIS_SOCKET_TIMEOUT,
        retry=RedisRetry(ExponentialBackoff(cap=0.25, base=0.05), retries=2),
    )


def init_app(app: Flask) -> None:
    if app.config["REDIS_URL"]:
        connection = redis_client(app.config["REDIS_URL"])
    else:  # embedded mode: this process's own Valkey server, started by the first command
        server = EmbeddedValkey()
        app.extensions["embedded_valkey"] = server
        connection = server.client()
    app.extensions["redis"] = connection


def get_redis() -> redis.Redis:
    return current_app.extensions["redis"]


def get_queue(name: str) -> Queue:
    return Queue(name, connection=get_redis())


class Permanent(Exception):
    """A job failure that retrying cannot fix (M-Pesa refused the request, credentials are
    missing): the job is not retried and becomes a dead letter at once. Raise it `from` the
    original error; the dead letter names that one."""


def backoff(retries: int = 5, base: float = 2.0) -> Retry | None:
    """RQ's Retry with exponential backoff and jitter: about base, 2·base, 4·base... seconds
    (2, 4, 8, 16, 32 by default), each varied by up to a fifth either way, drawn anew for
    every job so that jobs that failed together do not retry together. One interval per
    retry (the dead-letter hook counts attempts by them); None for no retries."""
    if retries < 1:
        return None
    return Retry(max=retries, interval=[round(base * 2**i * random.uniform(0.8, 1.2), 2) for i in range(retries)])


def enqueue(
    func: str,
    *args,
    queue: str = "default",
    job_id: str | None = None,
    delay: float | None = None,
    retry: bool = True,
    meta: dict | None = None,
) -> None:
    """Enqueues `func(*args)` once the current database transaction commits, retried with
    `backoff()` unless `retry` is False.

    With a `job_id`, a job still waiting or running under that id absorbs this one.
    A rollback drops the job along with the rows it would have needed. `meta` names what
    the job concerns, for its dead letter: `payment_id` (the merchant is read from the
    payment) and/or `merchant_id`.
    """
    pending = current_app.extensions.setdefault("_pending", threading.local())
    jobs = getattr(pending, "jobs", None)
    if jobs is None:
        jobs = pending.jobs = []
    jobs.append((current_app._get_current_object(), func, args, queue, job_id, delay, retry, meta))


def _flush(session) -> None:
    from flask import has_app_context

    if not has_app_context():
        return
    pending = current_app.extensions.get("_pending")
    jobs = getattr(pending, "jobs", None) if pending else None
    if not jobs:
        return
    pending.jobs = []
    for app, func, args, queue, job_id, delay, retry, meta in jobs:
        try:
            _send(app, func, args, queue, job_id, delay, retry, meta)
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


def _send(app, func, args, queue, job_id, delay, retry, meta=None) -> None:
    q = Queue(queue, connection=app.extensions["redis"])
    options = {
        "job_id": job_id,
        "retry": backoff(app.config["JOB_RETRIES"], app.config["JOB_RETRY_BASE"]) if retry else None,
        "result_ttl": 0 if job_id else 500,
        "failure_ttl": 7 * 86400,
        "meta": meta or None,
    }
    for _attempt in range(2):  # a second go when the old job vanished under us
        try:
            if delay:
                q.enqueue_in(timedelta(seconds=delay), func, *args, unique=bool(job_id), **options)
            else:
                q.enqueue(func, *args, unique=bool(job_id), **options)
            if (background := app.extensions.get("background_worker")) is not None:
                background.wake()  # a scheduled job's due time may now be the earliest
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


def queue_figures(connection: redis.Redis) -> list[dict]:
    """Jobs per queue: waiting, scheduled (a retry's backoff or a planned delay), running and
    failed. Counted without RQ's registry clean-up, which would settle abandoned jobs here,
    outside the worker whose failure hook files their dead letters."""
    figures = []
    with connection.pipeline(transaction=False) as pipe:
        for name in QUEUES:
            q = Queue(name, connection=connection)
            pipe.llen(q.key)
            for registry in (q.scheduled_job_registry, q.started_job_registry, q.failed_job_registry):
                pipe.zcard(registry.key)
        counts = pipe.execute()
    for i, name in enumerate(QUEUES):
        queued, scheduled, started, failed = counts[4 * i : 4 * i + 4]
        figures.append({"name": name, "queued": queued, "scheduled": scheduled, "started": started, "failed": failed})
    return figures


class ThreadScheduler(RQScheduler):
    """RQ's scheduler as a thread of the worker process, not a forked child: a worker killed
    with SIGKILL leaves no orphan behind holding the scheduler locks. Its locks live
    LOCK_TTL seconds (RQ's own live 61), it tries for free locks on every tick (RQ's worker
    retries every 10 minutes), and a lock whose holder was a process on this host that is
    gone is taken over at once, so a restarted worker schedules from its first second."""

    LOCK_TTL = 10

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self._stopping = threading.Event()

    def start(self) -> threading.Thread:
        self._stopping.clear()
        self._process = threading.Thread(target=self.work, name="rq-scheduler", daemon=True)
        self._process.start()
        return self._process

    def request_stop(self, signum=None, frame=None) -> None:
        self._stopping.set()

    def join(self, timeout: float | None = None) -> None:
        self.request_stop()
        if self._process is not None and self._process is not threading.current_thread():
            self._process.join(timeout)

    def work(self) -> None:
        while not self._stopping.is_set():
            try:
                self.tick()
            except Exception:  # Redis away for a moment: the next tick tries again
                self.log.exception("scheduler tick failed")
            self._stopping.wait(self.interval)
        try:
            self.stop()
        except Exception:  # the locks expire by themselves
            self.log.exception("could not release the scheduler locks")

    def tick(self) -> None:
        self.pid = os.getpid()
        self.last_heartbeat = now()
        self.save()  # the hash that tells other schedulers which process holds our locks
        held = set()
        for name in self._queue_names:
            key = self.get_locking_key(name)
            outcome = acquire_or_refresh_lock(self.connection, key, self.name, self.LOCK_TTL)
            if outcome == "taken" and self._holder_gone(key):
                outcome = acquire_or_refresh_lock(self.connection, key, self.name, self.LOCK_TTL)
            if outcome != "taken":
                held.add(name)
        if held != self._acquired_locks:
            self.log.info("scheduling for %s", ", ".join(sorted(held)) or "no queue")
            self._acquired_locks = held
            self._scheduled_job_registries = []
        self.enqueue_scheduled_jobs()

    def _holder_gone(self, key: str) -> bool:
        """Releases `key` when its holder is a scheduler of a dead process on this host."""
        holder = self.connection.get(key)
        if holder is None:
            return True
        holder = holder.decode()
        info = {k.decode(): v.decode() for k, v in self.connection.hgetall(f"rq:scheduler:{holder}").items()}
        if info.get("hostname") != self.hostname or not info.get("pid", "").isdigit():
            return False  # another host, or not registered yet: its lock expires within LOCK_TTL
        pid = int(info["pid"])
        if pid == os.getpid() or not _process_alive(pid):  # our pid is a previous life's (containers reuse pids)
            self.log.warning("taking over the scheduler lock %s of dead process %s", key, pid)
            release_lock(self.connection, key, holder)
            return True
        return False


def _process_alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as stat:
            return stat.read().rpartition(")")[2].split()[0] != "Z"  # a zombie is dead, only not yet reaped
    except FileNotFoundError:
        return False
    except OSError:  # no /proc (macOS): ask the kernel
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return False
        except PermissionError:
            pass
        return True


class AppWorker(SimpleWorker):
    """Runs each job inside an app context; jobs run in this process (one app, one pool),
    and so does the scheduler (a thread, see ThreadScheduler).

    The dead-letter hook is one of RQ's exception handlers. RQ calls those, like a job's
    `on_failure` callback, after every failed attempt, retried or not (rq 3.0:
    `_finalize_failure` runs both before `handle_job_failure` decides to retry), and for a
    job whose worker died under it (registry clean-up). The hook asks what RQ asks next,
    `job.should_retry`, so it files a dead letter once per job, when nothing will run it
    again."""

    flask_app: Flask | None = None

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.push_exc_handler(self._dead_letter)

    def execute_job(self, job, queue):
        with self.flask_app.app_context():
            return super().execute_job(job, queue)

    def handle_job_success(self, job, queue, started_job_registry, execution):
        # Before RQ lets the job go: while the row is written, the job still counts as running,
        # so a retry asked for meanwhile is refused rather than run twice.
        if (job.meta or {}).get("dead_letter_id"):
            self._never_raise("resolve the dead letter of", job, "resolved", job.meta["dead_letter_id"])
        return super().handle_job_success(job, queue, started_job_registry, execution)

    def clean_registries(self):
        with self.flask_app.app_context():  # abandoned jobs reach the hook from here
            super().clean_registries()

    def _dead_letter(self, job, exc_type, exc, tb):
        if self._stopped_job_id == job.id or job.id in PERIODIC:
            return None  # stopped on purpose; periodic jobs run again at their next tick
        tries = 1 + max(0, len(job.retry_intervals or ()) - (job.retries_left or 0))
        if isinstance(exc, Permanent):
            job.retries_left = 0  # read by RQ's handle_job_failure, which runs after the handlers
        elif job.should_retry:
            return None
        self._never_raise("record the dead letter of", job, "record", job, exc_type, exc, tb, tries)
        return None

    def _never_raise(self, doing: str, job, name: str, *args) -> None:
        """The hook never breaks the worker: a failure to write is logged, and the job's own
        failure is handled by RQ all the same."""
        from portal.services import dead_letters

        try:
            getattr(dead_letters, name)(*args)
        except Exception:
            log.exception("could not %s job %s", doing, job.id)
            try:
                from portal.extensions import db

                db.session.rollback()
            except Exception:  # the connection is gone too; the app context's teardown discards it
                log.debug("rollback after a failed dead-letter write failed", exc_info=True)

    def _start_scheduler(self, burst=False, logging_level="INFO", *args, **kwargs):
        if burst:  # RQ's own: schedule what is due, then let go of the locks
            return super()._start_scheduler(burst, logging_level, *args, **kwargs)
        self.scheduler = ThreadScheduler(
            self.queues, connection=self.connection, serializer=self.serializer, logging_level=logging_level or "INFO"
        )
        self.scheduler.start()

    def stop_scheduler(self):
        if isinstance(self.scheduler, ThreadScheduler):
            self.scheduler.join(timeout=10)
        else:
            super().stop_scheduler()


class ThreadWorker(AppWorker):
    """An AppWorker that can live in a thread: no signals."""

    death_penalty_class = TimerDeathPenalty

    def _install_signal_handlers(self):
        pass

    # RQ's command channel (stop or kill a forked work horse) means nothing to a worker that
    # lives for one burst in a thread of this process, and its listener thread took up to a
    # second to join at the end of every burst: a second of latency on every job.
    def subscribe(self):
        pass

    def unsubscribe(self):
        pass


class BackgroundWorker:
    """The in-process worker of embedded mode and of the tests: the same RQ jobs, the same
    scheduler, in a thread that works in short bursts. It sleeps until a job is enqueued in
    this process, a scheduled or periodic job falls due, or `idle` seconds pass (for jobs
    enqueued by other processes): an idle worker costs next to no CPU. `pause()` returns
    once no burst is running and none will start, so tests can truncate tables with no job
    half-done."""

    def __init__(self, app: Flask, idle: float = 0.5):
        self.app = app
        self.idle = idle
        self._stop = threading.Event()
        self._paused = threading.Event()
        self._wake = threading.Event()
        self._burst = threading.Lock()
        self._thread = threading.Thread(target=self._run, name="background-worker", daemon=True)
        self._last_periodic: dict = {}
        self._worker: ThreadWorker | None = None  # the thread's RQ worker, once it runs
        self._bursts = threading.Condition()
        self._started = self._finished_idle = 0  # numbers of bursts begun, and of the last one that found no work

    def start(self) -> "BackgroundWorker":
        self.app.extensions["background_worker"] = self
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        self._wake.set()
        self._thread.join(timeout=30)
        if self.app.extensions.get("background_worker") is self:
            del self.app.extensions["background_worker"]

    def pause(self) -> None:
        self._paused.set()
        if self._worker is not None:  # RQ's own flag: a running burst ends after the job in hand;
            self._worker._stop_requested = True  # the thread clears it before it next checks _paused
        with self._burst:  # waits for the running burst; the next one sees the flag
            pass

    def resume(self, look: bool = True) -> None:
        """Periodic jobs start their interval afresh: none runs behind the back of a test's
        setup. Like a worker starting, it cleans RQ's registries and looks for work at once;
        with `look=False` it does neither until an enqueue, a due job or `idle` wakes it (the
        tests' clean-up, around a Redis db it empties)."""
        now = time.monotonic()
        self._last_periodic.update({job_id: now for job_id in PERIODIC})
        if look and self._worker is not None:
            self._worker.last_cleaned_at = None
        self._paused.clear()
        if look:
            self._wake.set()

    def wake(self) -> None:
        self._wake.set()

    def wait_until_idle(self, timeout: float = 30.0, scheduled: bool = True) -> None:
        """Returns once a burst begun after this call found no job to run, and (with `scheduled`)
        no job waits in a scheduled registry: every job enqueued before the call, and every job
        those jobs enqueued, has finished. Without `scheduled`, jobs due later are left waiting.
        Tests use it to assert that something did *not* happen."""
        deadline = time.monotonic() + timeout
        with self._bursts:
            after = self._started
        while True:
            self.wake()
            with self._bursts:
                while self._finished_idle <= after:
                    left = deadline - time.monotonic()
                    if left <= 0:
                        raise TimeoutError(f"the background worker was still busy after {timeout}s")
                    self._bursts.wait(left)
                after = self._started
            connection = self.app.extensions["redis"]
            keys = [ScheduledJobRegistry(name, connection=connection).key for name in QUEUES]
            if not scheduled or not any(connection.zcard(key) for key in keys):
                return

    def _run(self) -> None:
        """One RQ worker for the thread's whole life, registered once. A burst schedules what is
        due and runs what is queued with it: about ten round trips to Redis when there is
        nothing to do, where a new RQ worker per burst (`work(burst=True)`) registered its
        birth and death, opened a connection for its scheduler and took and released every
        queue's scheduler lock, some forty round trips and 3.6 ms of CPU, several times a
        second."""
        connection = self.app.extensions["redis"]
        queues = [Queue(name, connection=connection) for name in QUEUES]
        registries = [q.scheduled_job_registry for q in queues]
        worker = self._worker = ThreadWorker(queues, connection=connection)
        worker.flask_app = self.app
        scheduler = RQScheduler(queues, connection=connection, logging_level="WARNING")
        try:
            worker.bootstrap(logging_level="WARNING")
        except redis.RedisError:  # Redis away at start: the bursts keep trying, heartbeats re-register
            log.exception("background worker could not register")
        while not self._stop.is_set():
            worker._stop_requested = False  # RQ's own flag, which pause() sets to end a burst early
            self._wake.clear()  # before the burst: a job enqueued during it wakes the next one
            with self._burst:
                if not self._paused.is_set():
                    with self._bursts:
                        self._started += 1
                        number = self._started
                    worked = self._work_once(worker, scheduler, registries)
                    if not worked and not self._paused.is_set():  # a burst cut short by pause() proves nothing
                        with self._bursts:
                            self._finished_idle = number
                            self._bursts.notify_all()
            self._wake.wait(self._until_due(registries, connection))
        try:
            worker.teardown()
        except redis.RedisError:
            log.warning("background worker could not register its death", exc_info=True)

    @staticmethod
    def _earliest(registries, connection) -> list[float]:
        """When each scheduled registry's first job falls due (epoch seconds): one round trip."""
        with connection.pipeline(transaction=False) as pipe:
            for registry in registries:
                pipe.zrange(registry.key, 0, 0, withscores=True)
            return [found[0][1] for found in pipe.execute() if found]

    def _until_due(self, registries, connection) -> float:
        """Seconds until the earliest scheduled or periodic job is due, at most `idle`."""
        wait = self.idle
        try:
            for at in self._earliest(registries, connection):
                wait = min(wait, at - time.time())
        except redis.RedisError:
            pass
        now = time.monotonic()
        for job_id, (_func, _queue, interval_key) in PERIODIC.items():
            wait = min(wait, self._last_periodic.get(job_id, 0) + float(self.app.config[interval_key]) - now)
        return max(wait, 0.01)

    def _work_once(self, worker: ThreadWorker, scheduler: RQScheduler, registries) -> bool:
        """One burst; True if it ran a job (or failed, so that nobody takes it for idle)."""
        try:
            enqueue_periodic(self.app, self._last_periodic)
            if any(at <= time.time() for at in self._earliest(registries, worker.connection)):
                # RQ's burst scheduling: the locks only while moving due jobs to their queues, so
                # a worker process beside this one schedules too
                if scheduler.acquire_locks():
                    try:
                        scheduler.enqueue_scheduled_jobs()
                    finally:
                        scheduler.release_locks()
            worked = False
            while not worker._stop_requested:
                found = worker.dequeue_job_and_maintain_ttl(None)  # heartbeat, registry clean-up when due
                if found is None:
                    break
                worker.execute_job(*found)
                worker.heartbeat()
                worked = True
            return worked
        except Exception:  # keep the thread alive; RQ records each job's own failure
            log.exception("background worker burst failed")
            return True
