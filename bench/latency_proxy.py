"""A delaying HTTP proxy, run as its own process: every request waits LATENCY seconds, then is
forwarded to UPSTREAM (the sandbox process) and its answer returned as it came. Makes the
simulated provider answer like a real one, without spending the web process's CPU.

    .venv/bin/python bench/latency_proxy.py PORT UPSTREAM [LATENCY]
"""

from gevent import monkey

monkey.patch_all()

import sys  # noqa: E402

import gevent  # noqa: E402
import requests  # noqa: E402
from gevent.pywsgi import WSGIServer  # noqa: E402

HOP_BY_HOP = {"connection", "keep-alive", "transfer-encoding", "content-length", "content-encoding", "host"}


def make_app(upstream: str, latency: float):
    def app(environ, start_response):
        gevent.sleep(latency)
        url = (
            upstream
            + environ.get("PATH_INFO", "")
            + ("?" + environ["QUERY_STRING"] if environ.get("QUERY_STRING") else "")
        )
        length = int(environ.get("CONTENT_LENGTH") or 0)
        body = environ["wsgi.input"].read(length) if length else None
        headers = {k[5:].replace("_", "-").title(): v for k, v in environ.items() if k.startswith("HTTP_")}
        if environ.get("CONTENT_TYPE"):
            headers["Content-Type"] = environ["CONTENT_TYPE"]
        # a connection per request, as the portal's Daraja client makes: no stale keep-alive to trip on
        answer = requests.request(environ["REQUEST_METHOD"], url, data=body, headers=headers, timeout=60)
        start_response(
            f"{answer.status_code} {answer.reason}",
            [(k, v) for k, v in answer.headers.items() if k.lower() not in HOP_BY_HOP],
        )
        return [answer.content]

    return app


if __name__ == "__main__":
    port, upstream = int(sys.argv[1]), sys.argv[2].rstrip("/")
    latency = float(sys.argv[3]) if len(sys.argv) > 3 else 0.3
    WSGIServer(("127.0.0.1", port), make_app(upstream, latency), log=None).serve_forever()
