"""worker.py under SIGKILL: nothing of it survives holding RQ's scheduler locks, and a
restarted worker takes the locks over at once and schedules delayed jobs."""

import os
import signal
import subprocess
import sys
import tempfile
from datetime import timedelta

import pytest
from rq import Queue
from rq.job import Job

from portal import ROOT
from portal.queueing import QUEUES
from tests.conftest import wait_for
from tests.helpers import worker_env


def session_members(sid: int) -> list[int]:
    """Pids of live processes in session `sid` (worker.py is started as a session leader)."""
    members = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as f:
                fields = f.read().rpartition(")")[2].split()
        except OSError:  # gone meanwhile
            continue
        if int(fields[3]) == sid and fields[0] != "Z":  # fields: state, ppid, pgrp, session
            members.append(int(entry))
    return members


def exited(proc, log, timeout: float) -> bool:
    """Waits for `proc` to exit; if it does not, fails with what each of its threads was doing
    (faulthandler prints every thread's stack on SIGABRT) and the worker's log."""
    try:
        proc.wait(timeout=timeout)
        return True
    except subprocess.TimeoutExpired:
        proc.send_signal(signal.SIGABRT)
        proc.wait(timeout=10)
        log.seek(0)
        pytest.fail(f"worker.py did not exit within {timeout} s of SIGTERM; its log and stacks:\n{log.read()}")


def lock_holders(redis) -> dict:
    """Queue name -> pid of the scheduler holding its lock (None when free or unknown)."""
    holders = {}
    for name in QUEUES:
        holder = redis.get(f"rq:scheduler-lock:{name}")
        pid = redis.hget(f"rq:scheduler:{holder.decode()}", "pid") if holder else None
        holders[name] = int(pid) if pid else None
    return holders


@pytest.fixture
def start_worker(app, worker, live_server):
    env = worker_env(app, live_server, PYTHONFAULTHANDLER="1", LOG_LEVEL="INFO")
    worker.pause()  # the worker.py processes do all the work in this test
    started = []

    def start():
        log = tempfile.NamedTemporaryFile("w+", prefix="worker-", suffix=".log")
        proc = subprocess.Popen(
            [sys.executable, "worker.py"],
            cwd=ROOT,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        started.append((proc, log))
        return proc, log

    yield start
    for proc, log in started:
        if proc.poll() is None:
            proc.terminate()
            try:
                proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        for pid in session_members(proc.pid):  # only what this test started
            os.kill(pid, signal.SIGKILL)
        log.close()
    worker.resume()


def test_sigkilled_worker_leaves_nothing_and_a_new_one_takes_over_at_once(app, start_worker):
    redis = app.extensions["redis"]
    first, _ = start_worker()
    held_by_first = wait_for(
        lambda: (
            (pids := set(lock_holders(redis).values())) <= set(session_members(first.pid)) and None not in pids and pids
        ),
        timeout=30,
        what="the first worker (or a process of it) to hold every scheduler lock",
    )

    first.send_signal(signal.SIGKILL)
    first.wait(timeout=10)
    assert session_members(first.pid) == [], "a process of the killed worker survived it"
    assert set(lock_holders(redis).values()) == held_by_first  # its locks outlive it in Redis...

    second, log = start_worker()
    job = Queue("default", connection=redis).enqueue_in(timedelta(seconds=1), "os.getpid")
    job = wait_for(
        lambda: (j := Job.fetch(job.id, connection=redis)).is_finished and j,
        timeout=30,
        what="the delayed job to be scheduled and run by the new worker",
    )
    assert job.return_value() == second.pid
    assert set(lock_holders(redis).values()) == {second.pid}
    log.seek(0)
    output = log.read()
    # ...and the new worker took them from the dead process, not after they expired
    assert all(f"of dead process {pid}" in output for pid in held_by_first), output


def test_stopped_worker_releases_the_scheduler_locks(app, start_worker):
    redis = app.extensions["redis"]
    proc, log = start_worker()
    wait_for(
        lambda: set(lock_holders(redis).values()) == {proc.pid},
        timeout=30,
        what="the worker to hold every scheduler lock",
    )
    proc.terminate()
    assert exited(proc, log, timeout=30)  # a warm shutdown lets the job in hand (the first sweep) finish
    assert set(lock_holders(redis).values()) == {None}
