"""Embedded mode's Valkey server: RQ works on it, each app process has its own, and it dies with the app."""

import os
import subprocess
import sys
from datetime import timedelta

import pytest
from rq import Queue, SimpleWorker

from portal.embedded import EmbeddedValkey
from tests.conftest import wait_for

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


@pytest.fixture
def server():
    server = EmbeddedValkey()
    yield server
    server.stop()


def test_rq_runs_queued_scheduled_and_unique_jobs_on_it(server):
    connection = server.client()
    queue = Queue("default", connection=connection)
    now = queue.enqueue("math.hypot", 3, 4)
    later = queue.enqueue_in(timedelta(milliseconds=200), "math.hypot", 6, 8)
    queue.enqueue("math.hypot", 1, 1, job_id="once", unique=True)
    with pytest.raises(Exception, match="once"):
        queue.enqueue("math.hypot", 1, 1, job_id="once", unique=True)

    def worked():
        SimpleWorker([queue], connection=connection).work(burst=True, with_scheduler=True, logging_level="ERROR")
        return later.get_status() == "finished"

    wait_for(worked, timeout=15, what="the scheduled job to run")
    assert (now.return_value(), later.return_value()) == (5.0, 10.0)


def test_each_server_has_its_own_socket_and_data(server):
    other = EmbeddedValkey()
    try:
        server.client().set("k", "mine")
        assert other.client().get("k") is None
        assert server.socket_path() != other.socket_path() and server.pid != other.pid
        directory = os.path.dirname(other.socket_path())
    finally:
        other.stop()
    assert not os.path.exists(directory)  # stopping removes the socket and its directory


def test_nothing_starts_until_the_first_command():
    server = EmbeddedValkey()
    server.client()
    assert server.pid is None


def _alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/status") as status:
            return "\nState:\tZ" not in status.read()
    except FileNotFoundError:
        return False


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="parent-death signal is Linux's")
def test_the_server_dies_with_an_app_killed_by_sigkill():
    script = (
        "import sys, threading, time\n"
        "from portal.embedded import EmbeddedValkey\n"
        "server = EmbeddedValkey(); client = server.client()\n"
        # the first command from a thread that then ends: the server must outlive that thread
        "t = threading.Thread(target=client.ping); t.start(); t.join()\n"
        "print(server.pid, flush=True); client.ping(); print('ok', flush=True); time.sleep(120)\n"
    )
    app = subprocess.Popen([sys.executable, "-c", script], cwd=ROOT, stdout=subprocess.PIPE, text=True)
    try:
        pid = int(app.stdout.readline())
        assert app.stdout.readline().strip() == "ok"
        assert _alive(pid)
    finally:
        app.kill()
        app.wait()
    wait_for(lambda: not _alive(pid), timeout=10, what=f"valkey-server {pid} to die with its app")
