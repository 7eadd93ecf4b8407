"""Runs the Procfile's processes as the Procfile says (each line through the shell, with its
own free port), for the benchmarks and tests/test_procfile_serving.py."""

import os
import signal
import socket
import subprocess
import tempfile
import time

import requests

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
VENV_BIN = os.path.join(ROOT, ".venv", "bin")


def parse(path: str = os.path.join(ROOT, "Procfile")) -> dict[str, str]:
    """Process name -> command, in the Procfile's order."""
    processes = {}
    with open(path) as f:
        for line in f:
            line = line.strip()
            if line and not line.startswith("#"):
                name, _, command = line.partition(":")
                processes[name.strip()] = command.strip()
    return processes


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Procfile:
    """The Procfile's processes on free ports. `env` is the environment every process shares
    (DATABASE_URL, REDIS_URL, ...); PORT, SANDBOX_PORT, PUBLIC_BASE_URL and DARAJA_BASE_URL are
    set here unless `env` has them, as a Procfile runner and a .env would."""

    def __init__(self, env: dict, names=None, daraja_base_url: str | None = None):
        self.commands = parse()
        self.names = list(names or self.commands)
        self.web_port, self.sandbox_port = free_port(), free_port()
        self.web_url = f"http://127.0.0.1:{self.web_port}"
        self.sandbox_url = f"http://127.0.0.1:{self.sandbox_port}"
        self.env = dict(os.environ)
        self.env.update(
            PATH=VENV_BIN + os.pathsep + os.environ.get("PATH", ""),
            SANDBOX_PORT=str(self.sandbox_port),
            PUBLIC_BASE_URL=self.web_url,
            DARAJA_BASE_URL=daraja_base_url or self.sandbox_url + "/sandbox/daraja",
        )
        self.env.update(env)
        self.procs: dict[str, subprocess.Popen] = {}
        self.logs: dict[str, tempfile._TemporaryFileWrapper] = {}

    def start(self, timeout: float = 60.0) -> "Procfile":
        for name in self.names:
            env = dict(self.env, PORT=str(self.web_port if name == "web" else free_port()))
            log = self.logs[name] = tempfile.NamedTemporaryFile("w+", prefix=f"procfile-{name}-", suffix=".log")
            self.procs[name] = subprocess.Popen(
                ["bash", "-c", "exec " + self.commands[name]],
                cwd=ROOT,
                env=env,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        self.wait_ready(timeout)
        return self

    def wait_ready(self, timeout: float) -> None:
        probes = {"web": self.web_url + "/health", "sandbox": self.sandbox_url + "/sandbox/daraja/oauth/v1/generate"}
        deadline = time.monotonic() + timeout
        for name, url in probes.items():
            if name not in self.procs:
                continue
            while True:
                if self.procs[name].poll() is not None:
                    raise RuntimeError(f"{name} exited:\n{self.log(name)}")
                try:
                    requests.get(url, timeout=2)
                    break
                except requests.RequestException:
                    if time.monotonic() > deadline:
                        raise RuntimeError(f"{name} did not answer within {timeout}s:\n{self.log(name)}") from None
                    time.sleep(0.1)

    def cpu_seconds(self, name: str) -> float:
        """CPU time (user + system) so far of the live processes of `name` (gunicorn's master and workers)."""
        return session_cpu_seconds(self.procs[name].pid)

    def log(self, name: str) -> str:
        self.logs[name].flush()
        with open(self.logs[name].name) as f:
            return f.read()

    def stop(self) -> None:
        for proc in self.procs.values():
            _signal_group(proc.pid, signal.SIGTERM)
        for proc in self.procs.values():
            try:
                proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                pass
            _signal_group(proc.pid, signal.SIGKILL)  # whatever of its session is left (gunicorn's workers)
            proc.wait()
        for log in self.logs.values():
            log.close()

    def __enter__(self) -> "Procfile":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()


def _cpu_seconds(wanted) -> float:
    """CPU time (user + system) so far of the live processes for which wanted(name, session) holds."""
    ticks = 0
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/stat") as f:
                    name, _, rest = f.read().partition(" (")[2].rpartition(")")
            except OSError:
                continue
            fields = rest.split()  # state, ppid, pgrp, session, ..., utime and stime at 11 and 12
            if wanted(name, int(fields[3])):
                ticks += int(fields[11]) + int(fields[12])
    return ticks / os.sysconf("SC_CLK_TCK")


def session_cpu_seconds(sid: int) -> float:
    """CPU time so far of the live processes in session `sid`."""
    return _cpu_seconds(lambda _name, session: session == sid)


def command_cpu_seconds(command: str) -> float:
    """CPU time so far of the live processes named `command` (postgres, redis-server)."""
    return _cpu_seconds(lambda name, _session: name == command)


def machine_cpu_seconds() -> float:
    """CPU time (user + system, all cores) the whole machine has spent so far: /proc/stat."""
    with open("/proc/stat") as f:
        fields = [int(v) for v in f.readline().split()[1:]]
    busy = sum(fields[:3]) + sum(fields[5:8])  # user, nice, system, irq, softirq, steal
    return busy / os.sysconf("SC_CLK_TCK")


class CpuMeter:
    """CPU seconds spent between start() and stop() by each part of the machine: the Procfile's
    processes, extra sessions (a proxy), this process (the clients), PostgreSQL, Redis, and
    the rest (the kernel's share, anything else)."""

    def __init__(self, served: "Procfile", sessions: dict | None = None):
        self.served, self.sessions = served, sessions or {}

    def _read(self) -> dict:
        parts = {name: self.served.cpu_seconds(name) for name in self.served.procs}
        parts.update({name: session_cpu_seconds(sid) for name, sid in self.sessions.items()})
        parts.update(
            clients=time.process_time(),
            postgres=command_cpu_seconds("postgres"),
            redis=command_cpu_seconds("redis-server"),
        )
        parts["machine"] = machine_cpu_seconds()
        return parts

    def start(self) -> "CpuMeter":
        self._started = self._read()
        return self

    def stop(self) -> dict:
        now = self._read()
        spent = {name: now[name] - self._started[name] for name in now}
        spent["rest"] = spent.pop("machine") - sum(spent.values())
        return spent


def per_operation(spent: dict, operations: int) -> str:
    """'web 2.1 ms, postgres 0.4 ms, ...' for CPU seconds spent over `operations`."""
    return ", ".join(f"{name} {seconds * 1000 / operations:.1f} ms" for name, seconds in spent.items())


def _signal_group(pgid: int, sig: int) -> None:
    try:
        os.killpg(pgid, sig)
    except ProcessLookupError:
        pass


def fresh_database(url: str, secret_key: str) -> dict:
    """Creates `url`'s PostgreSQL database if missing, empties it, migrates it and seeds the demo
    merchants (their credentials sealed with `secret_key`, the processes' SECRET_KEY); returns
    seed_demo()'s accounts (logins and API keys)."""
    import psycopg
    from flask_migrate import upgrade
    from sqlalchemy import text

    from portal import create_app
    from portal.extensions import db
    from portal.services.merchants import seed_demo

    base, _, name = url.rpartition("/")
    with psycopg.connect(base + "/postgres", autocommit=True) as conn:
        if not conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,)).fetchone():
            conn.execute(f'CREATE DATABASE "{name}"')
    app = create_app(
        {
            "SQLALCHEMY_DATABASE_URI": url,
            "REDIS_URL": "",
            "LOG_LEVEL": "WARNING",
            "SECRET_KEY": secret_key,
            "ENCRYPTION_KEY": "",
        }
    )
    with app.app_context():
        db.session.execute(text("DROP SCHEMA public CASCADE; CREATE SCHEMA public"))
        db.session.commit()
        upgrade()
        accounts = seed_demo()
        db.session.remove()
        db.engine.dispose()
    return accounts


def fire(n: int, request, clients: int) -> list:
    """Runs request(session, i) for i in range(n) from `clients` threads, one requests.Session
    each; returns the results in order."""
    import threading
    from concurrent.futures import ThreadPoolExecutor

    local = threading.local()

    def one(i):
        if not hasattr(local, "session"):
            local.session = requests.Session()
            local.session.trust_env = False  # the load generator skips the environment scan per request
        return request(local.session, i)

    with ThreadPoolExecutor(clients) as pool:
        return list(pool.map(one, range(n)))
