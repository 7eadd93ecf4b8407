"""HTTP for calls to providers: one urllib3 pool manager per process, connections kept alive.

urllib3 is what `requests` is built on; called directly it costs a fraction of a request's
CPU (`requests` merges settings, cookies, hooks and the environment's proxy settings on every
call: half a millisecond of a push here). The environment's proxy settings are read once,
when the pool is made; urllib3 drops a connection the server has closed before reusing it.

A kept-alive connection is not reused once it has been idle IDLE_EXPIRY seconds. A server closes
an idle connection after its own keep-alive time (gunicorn 2 s, uvicorn and Node 5 s, nginx
75 s), and a request that reaches it as it closes gets no answer at all ("Remote end closed
connection without response"), which for a POST cannot be told from a request the provider took
before the connection broke. So an STK push sent on such a connection ended with its outcome
unknown although it was never taken. Dropping connections well before any usual keep-alive time
ends closes that window (urllib3's pool is last in, first out, so under load a few connections
stay busy and the rest wait, idle, at the bottom); a fresh connection costs a connect (and a TLS
handshake) only after a second without a call.
"""

import os
import threading
import time
import urllib.request
from urllib.parse import urlsplit

import urllib3
from urllib3.connectionpool import HTTPConnectionPool, HTTPSConnectionPool

POOL_SIZE = 40  # connections kept per provider host: one per web thread
IDLE_EXPIRY = 1.0  # seconds: below every usual server keep-alive time, less a far provider's one-way latency
_pools: dict[tuple[str, str], urllib3.PoolManager] = {}
_lock = threading.Lock()


def pool_for(base_url: str) -> urllib3.PoolManager:
    """The process's pool for `base_url`'s scheme and host (through the environment's proxy,
    unless NO_PROXY exempts the host)."""
    parts = urlsplit(base_url)
    key = (parts.scheme.lower(), parts.hostname or "")
    pool = _pools.get(key)
    if pool is None:
        with _lock:
            pool = _pools.get(key)
            if pool is None:
                pool = _pools[key] = _make(*key)
    return pool


def _make(scheme: str, host: str, idle_expiry: float = IDLE_EXPIRY) -> urllib3.PoolManager:
    ca_bundle = os.environ.get("REQUESTS_CA_BUNDLE") or os.environ.get("CURL_CA_BUNDLE")
    options = {"maxsize": POOL_SIZE, "retries": False}
    if ca_bundle:
        options["ca_certs"] = ca_bundle
    proxies = urllib.request.getproxies()
    proxy = proxies.get(scheme)
    if proxy and not urllib.request.proxy_bypass_environment(host, proxies):
        manager = urllib3.ProxyManager(proxy, **options)
    else:
        manager = urllib3.PoolManager(**options)
    manager.pool_classes_by_scheme = {
        "http": _expiring(HTTPConnectionPool, idle_expiry),
        "https": _expiring(HTTPSConnectionPool, idle_expiry),
    }
    return manager


def _expiring(pool_class: type[HTTPConnectionPool], idle_expiry: float) -> type[HTTPConnectionPool]:
    """`pool_class` whose kept-alive connections are closed, not reused, after `idle_expiry`
    seconds idle (a closed connection reconnects when next used)."""

    class Expiring(pool_class):
        def _get_conn(self, timeout=None):
            conn = super()._get_conn(timeout)
            idle_since = getattr(conn, "idle_since", None)
            if idle_since is not None and time.monotonic() - idle_since > idle_expiry:
                conn.close()
            return conn

        def _put_conn(self, conn) -> None:
            if conn is not None:
                conn.idle_since = time.monotonic()
            super()._put_conn(conn)

    return Expiring
