"""Provider HTTP pools: an operator's proxy settings are honoured, read once per host."""

import urllib3

from portal.providers.http import pool_for

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
