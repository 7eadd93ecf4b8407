"""A delaying HTTP proxy, run as its own process: every request waits LATENCY seconds, then is
forwarded to UPSTREAM (the sandbox process) and its answer returned as it came. Makes the
simulated provider answer like a real one, without spending the web process's CPU.

    .venv/bin/python bench/latency_proxy.py PORT UPSTREAM [LATENCY]
"""

import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import requests

HOP_BY_HOP = {"connection", "keep-alive", "transfer-encoding", "content-length", "content-encoding", "host"}


class Delaying(BaseHTTPRequestHandler):
    upstream = ""
    latency = 0.3
    protocol_version = "HTTP/1.1"  # keep-alive, as a real provider's front end allows
    local = threading.local()

    def _forward(self) -> None:
        time.sleep(self.latency)
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else None
        headers = {k: v for k, v in self.headers.items() if k.lower() not in HOP_BY_HOP}
        if not hasattr(self.local, "http"):  # one kept-alive session per proxy thread
            self.local.http = requests.Session()
            self.local.http.trust_env = False
        answer = self.local.http.request(
            self.command, self.upstream + self.path, data=body, headers=headers, timeout=60
        )
        self.send_response(answer.status_code)
        for k, v in answer.headers.items():
            if k.lower() not in HOP_BY_HOP:
                self.send_header(k, v)
        self.send_header("Content-Length", str(len(answer.content)))
        self.end_headers()
        self.wfile.write(answer.content)

    do_GET = do_POST = _forward

    def log_message(self, *args) -> None:
        pass


if __name__ == "__main__":
    port, Delaying.upstream = int(sys.argv[1]), sys.argv[2].rstrip("/")
    Delaying.latency = float(sys.argv[3]) if len(sys.argv) > 3 else 0.3
    ThreadingHTTPServer.request_queue_size = 256  # 64 clients connect at once
    ThreadingHTTPServer(("127.0.0.1", port), Delaying).serve_forever()
