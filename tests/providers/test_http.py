"""Provider HTTP pools: an operator's proxy settings are honoured, read once per host; a
connection idle too long is not reused."""

import http.server
import threading

import urllib3

from portal.providers.http import IDLE_EXPIRY, _make, pool_for

PROXY_VARIABLES = ("HTTPS_PROXY", "https_proxy", "HTTP_PROXY", "http_proxy", "ALL_PROXY", "all_proxy", "no_proxy")


def test_the_environments_proxy_is_used_except_for_no_proxy_hosts(monkeypatch):
    for name in PROXY_VARIABLES:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("HTTPS_PROXY", "http://proxy.example:3128")
    monkeypatch.setenv("NO_PROXY", "sandbox.internal,127.0.0.1")
    through = pool_for("https://daraja-proxied.example")
    assert isinstance(through, urllib3.ProxyManager)
    assert through.proxy.host == "proxy.example" and through.proxy.port == 3128
    assert not isinstance(pool_for("https://sandbox.internal/sandbox/daraja"), urllib3.ProxyManager)
    assert not isinstance(pool_for("http://daraja-plain.example"), urllib3.ProxyManager)  # no HTTP_PROXY set
    assert pool_for("https://daraja-proxied.example/oauth") is through  # one pool per host, kept alive


def test_without_a_proxy_the_pool_connects_directly(monkeypatch):
    for name in PROXY_VARIABLES:
        monkeypatch.delenv(name, raising=False)
    assert not isinstance(pool_for("https://daraja-direct.example"), urllib3.ProxyManager)


class _Counting(http.server.BaseHTTPRequestHandler):
    """Answers every request on a kept-alive connection and records the connection it came on."""

    protocol_version = "HTTP/1.1"
    connections: list = []

    def do_POST(self):
        self.rfile.read(int(self.headers.get("Content-Length", 0)))
        self.connections.append(self.client_address)
        self.send_response(200)
        self.send_header("Content-Length", "2")
        self.end_headers()
        self.wfile.write(b"{}")

    def log_message(self, *args):
        pass


def _two_posts(idle_expiry: float) -> int:
    """How many connections two POSTs in a row open to a server that keeps them alive."""
    _Counting.connections = []
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Counting)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        pool = _make("http", "127.0.0.1", idle_expiry=idle_expiry)
        url = f"http://127.0.0.1:{server.server_address[1]}/"
        for _ in range(2):
            assert pool.request("POST", url, body=b"{}").status == 200
        pool.clear()
    finally:
        server.shutdown()
        server.server_close()
    return len(set(_Counting.connections))


def test_a_connection_idle_past_the_expiry_is_not_reused():
    """A kept-alive connection is reused while fresh; once idle longer than the expiry it is
    closed and the next call connects afresh (so no POST is sent as a server times it out)."""
    assert _two_posts(idle_expiry=60.0) == 1
    assert _two_posts(idle_expiry=0.0) == 2
    assert 0 < IDLE_EXPIRY < 2.0  # below gunicorn's keep-alive, the shortest usual one
