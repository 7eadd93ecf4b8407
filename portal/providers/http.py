"""HTTP sessions for calls to providers: one per thread and base URL, kept alive.

A fresh `requests.Session` per call costs a TCP (in production a TLS) handshake, and
`requests` reads the proxy settings from the environment on every call (a walk over
os.environ that cost a millisecond a call here). A session from `session_for` reuses its
connections (urllib3 drops one the server has closed before reusing it) and has the
environment's proxy and CA-bundle settings resolved once, when it is made.
"""

import os
import threading

import requests

_local = threading.local()


def session_for(base_url: str) -> requests.Session:
    """This thread's session for `base_url` (sessions are not shared between threads)."""
    sessions = _local.__dict__.setdefault("sessions", {})
    session = sessions.get(base_url)
    if session is None:
        session = requests.Session()
        session.trust_env = False  # resolved here, once, instead of on every request
        session.proxies = requests.utils.get_environ_proxies(base_url)
        session.verify = os.environ.get("REQUESTS_CA_BUNDLE") or os.environ.get("CURL_CA_BUNDLE") or True
        sessions[base_url] = session
    return session
