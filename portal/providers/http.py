"""HTTP for calls to providers: one urllib3 pool manager per process, connections kept alive.

urllib3 is what `requests` is built on; called directly it costs a fraction of a request's
CPU (`requests` merges settings, cookies, hooks and the environment's proxy settings on every
call: half a millisecond of a push here). The environment's proxy settings are read once,
when the pool is made; urllib3 drops a connection the server has closed before reusing it.
"""

import os
import threading
import urllib.request
from urllib.parse import urlsplit

import urllib3

POOL_SIZE = 40  # connections kept per provider host: one per web thread
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


def _make(scheme: str, host: str) -> urllib3.PoolManager:
    ca_bundle = os.environ.get("REQUESTS_CA_BUNDLE") or os.environ.get("CURL_CA_BUNDLE")
    options = {"maxsize": POOL_SIZE, "retries": False}
    if ca_bundle:
        options["ca_certs"] = ca_bundle
    proxies = urllib.request.getproxies()
    proxy = proxies.get(scheme)
    if proxy and not urllib.request.proxy_bypass_environment(host, proxies):
        return urllib3.ProxyManager(proxy, **options)
    return urllib3.PoolManager(**options)
