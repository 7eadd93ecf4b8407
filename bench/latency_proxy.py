"""A delaying TCP proxy, run as its own process: every byte a client sends reaches UPSTREAM (the
sandbox process) LATENCY seconds later, and the answer comes back as it came. Makes the
simulated provider answer like a real one far away, without spending the web process's CPU.

It delays the connection, not HTTP messages: a request on a kept-alive connection waits
LATENCY seconds in the "network", as it would on the way to a real provider, and nothing is
parsed. The proxy is measuring apparatus, and what it spends is taken from the same two cores
as everything it measures, so it is one asyncio loop moving bytes (no thread, no HTTP parser
per request).

    .venv/bin/python bench/latency_proxy.py PORT UPSTREAM [LATENCY]
"""

import asyncio
import sys
from collections import deque
from urllib.parse import urlsplit


class Upstream(asyncio.Protocol):
    """The sandbox's side of one connection: its bytes go straight back to the client."""

    def __init__(self, client: "Delaying"):
        self.client = client

    def data_received(self, data: bytes) -> None:
        self.client.transport.write(data)

    def connection_lost(self, exc) -> None:
        self.client.transport.close()


class Delaying(asyncio.Protocol):
    """The client's side of one connection: its bytes are held LATENCY seconds, in order."""

    upstream = urlsplit("http://127.0.0.1")
    latency = 0.3

    def connection_made(self, transport) -> None:
        self.loop = asyncio.get_running_loop()
        self.transport, self.held, self.timer, self.forward = transport, deque(), None, None
        self.opening = self.loop.create_task(self._open())

    async def _open(self) -> None:
        try:
            forward, _protocol = await self.loop.create_connection(
                lambda: Upstream(self), self.upstream.hostname, self.upstream.port
            )
        except OSError:
            self.transport.close()
            return
        self.forward = forward
        self._release()  # what came due while connecting

    def data_received(self, data: bytes) -> None:
        self.held.append((self.loop.time() + self.latency, data))
        if self.timer is None:
            self.timer = self.loop.call_at(self.held[0][0], self._release)

    def _release(self) -> None:
        self.timer = None
        if self.forward is None:  # still connecting: _open releases them
            return
        now = self.loop.time()
        while self.held and self.held[0][0] <= now:
            self.forward.write(self.held.popleft()[1])
        if self.held:
            self.timer = self.loop.call_at(self.held[0][0], self._release)

    def connection_lost(self, exc) -> None:
        if self.timer is not None:
            self.timer.cancel()
        if self.forward is not None:
            self.forward.close()
        else:
            self.opening.cancel()


async def serve(port: int) -> None:
    loop = asyncio.get_running_loop()
    server = await loop.create_server(Delaying, "127.0.0.1", port, backlog=256)  # 64 clients connect at once
    async with server:
        await server.serve_forever()


if __name__ == "__main__":
    port, Delaying.upstream = int(sys.argv[1]), urlsplit(sys.argv[2])
    Delaying.latency = float(sys.argv[3]) if len(sys.argv) > 3 else 0.3
    asyncio.run(serve(port))
