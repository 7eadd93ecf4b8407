"""A delaying HTTP proxy, run as its own process: every request waits LATENCY seconds, then is
forwarded to UPSTREAM (the sandbox process) and its answer returned as it came. Makes the
simulated provider answer like a real one, without spending the web process's CPU.

Connections are kept alive on both sides (as a real provider's front end allows), and the
forwarding is plain http.client: the proxy is measuring apparatus, and what it spends is taken
from the same two cores as everything it measures.

    .venv/bin/python bench/latency_proxy.py PORT UPSTREAM [LATENCY]
"""

import http.client
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import urlsplit

HOP_BY_HOP = {"connection", "keep-alive", "transfer-encoding", "content-length", "content-encoding", "host"}


class Delaying(BaseHTTPRequestHandler):
    upstream = urlsplit("http://127.0.0.1")
    latency = 0.3
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True  # headers and body go out as two writes: no 40 ms wait between them
    local = threading.local()

    def _upstream(self, fresh: bool = False) -> http.client.HTTPConnection:
        if fresh or not hasattr(self.local, "conn"):  # one kept-alive connection per proxy thread
            self.local.conn = http.client.HTTPConnection(self.upstream.hostname, self.upstream.port, timeout=60)
        return self.local.conn

    def _forward(self) -> None:
        time.sleep(self.latency)
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else None
        headers = {k: v for k, v in self.headers.items() if k.lower() not in HOP_BY_HOP}
        path = self.upstream.path.rstrip("/") + self.path
        for fresh in (False, True):  # a kept-alive connection the upstream closed: once more on a new one
            conn = self._upstream(fresh)
            try:
                conn.request(self.command, path, body=body, headers=headers)
                answer = conn.getresponse()
                content = answer.read()
                break
            except (http.client.RemoteDisconnected, ConnectionResetError, BrokenPipeError):
                conn.close()
                if fresh:
                    raise
        self.send_response(answer.status)
        for k, v in answer.getheaders():
            if k.lower() not in HOP_BY_HOP:
                self.send_header(k, v)
        self.send_header("Content-Length", str(len(content)))
        self.end_headers()
        self.wfile.write(content)

    do_GET = do_POST = _forward

    def log_message(self, *args) -> None:
        pass


if __name__ == "__main__":
    port, Delaying.upstream = int(sys.argv[1]), urlsplit(sys.argv[2])
    Delaying.latency = float(sys.argv[3]) if len(sys.argv) > 3 else 0.3
    ThreadingHTTPServer.request_queue_size = 256  # 64 clients connect at once
    ThreadingHTTPServer(("127.0.0.1", port), Delaying).serve_forever()
