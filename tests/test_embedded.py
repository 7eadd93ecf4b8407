"""Embedded mode's Valkey server: RQ works on it, each app process has its own, and it dies with the app."""

import os
import shutil
import signal
import subprocess
import sys
import tempfile
from datetime import timedelta

import pytest
import requests
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
        "print(server.pid, server.socket_path(), flush=True); client.ping(); print('ok', flush=True)\n"
        "time.sleep(120)\n"
    )
    app = subprocess.Popen([sys.executable, "-c", script], cwd=ROOT, stdout=subprocess.PIPE, text=True)
    try:
        pid, socket = app.stdout.readline().split()
        pid = int(pid)
        assert app.stdout.readline().strip() == "ok"
        assert _alive(pid)
    finally:
        app.kill()
        app.wait()
    wait_for(lambda: not _alive(pid), timeout=10, what=f"valkey-server {pid} to die with its app")
    shutil.rmtree(os.path.dirname(socket))  # a SIGKILL leaves the app no time to remove it


def test_flask_serve_runs_embedded_mode_logs_no_query_strings_and_stops_its_server_on_sigterm(tmp_path):
    tmpdir = tempfile.mkdtemp()  # its own, to see what it leaves behind; short, as socket paths must be
    env = dict(
        os.environ,
        DATABASE_URL=f"sqlite:///{tmp_path}/serve.db",
        LOG_LEVEL="INFO",
        SWEEP_INTERVAL="3600",
        TMPDIR=tmpdir,
    )
    env.pop("REDIS_URL", None)
    serve = subprocess.Popen(
        [sys.executable, "-m", "flask", "--app", "wsgi", "serve", "--port", "0"],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    lines = []
    try:
        while not (url := next((w for line in lines for w in line.split() if w.startswith("http://")), None)):
            lines.append(serve.stdout.readline())
            assert lines[-1], "".join(lines)
        pid = int(next(line for line in lines if "embedded mode" in line).split("(pid ")[1].split(")")[0])
        with open(f"/proc/{pid}/cmdline") as cmdline:  # valkey-server shows its socket in its title
            socket_dir = os.path.dirname(cmdline.read().split("unixsocket:")[1].split()[0].strip("\0"))
        assert os.path.isdir(socket_dir)
        assert requests.get(f"{url}/health?token=secret-callback-token", timeout=30).status_code == 200
        serve.send_signal(signal.SIGTERM)
        output = "".join(lines) + serve.communicate(timeout=30)[0]
    finally:
        serve.kill()
    assert serve.returncode == 0, output
    assert '"GET /health HTTP/1.1" 200' in output and "secret" not in output
    wait_for(lambda: not _alive(pid), timeout=10, what=f"valkey-server {pid} to stop with flask serve")
    assert os.path.dirname(socket_dir) == tmpdir and os.listdir(tmpdir) == []  # no second server started at exit
    os.rmdir(tmpdir)
