"""Benchmark: how many event streams (GET /api/events) one web process holds while the API still
answers, and whether every stream gets its merchant's events.

Starts the Procfile's `web` line on PostgreSQL (BENCH_DATABASE_URL) as one process (`--workers
1`, the Procfile's 40 threads: the streams of a process share its threads, whichever way the
kernel spreads connections over workers), first with no cap on streams. It opens streams in
steps (half for each demo merchant); at each step it times ordinary requests (GET
/api/transactions, 16 clients, a 5 s timeout) and makes payment events in this process (as a
worker would: committed, published over Redis), then checks that every open stream received
exactly its merchant's events made since it opened, in order, and how long they took to
arrive. Then it restarts the process with the default cap and checks that streams beyond it
are answered 503 at once while the API answers. Figures from one run; not part of the tests.

    .venv/bin/python bench/sse_streams.py
"""

import os
import statistics
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import requests  # noqa: E402

from bench.procfile import CpuMeter, Procfile, fire, fresh_database  # noqa: E402
from portal import create_app  # noqa: E402
from portal.extensions import db  # noqa: E402
from portal.services.transitions import create_payment, subscribe, transition  # noqa: E402
from tests.helpers import EventStream  # noqa: E402

URL = os.environ.get("BENCH_DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/bench")  # wiped each run
REDIS_URL = os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379/13")  # flushed each run
SECRET = "bench-secret-key-not-for-production"
STEPS = [int(n) for n in os.environ.get("BENCH_STREAMS", "0,8,16,24,32,36,38,39,40").split(",")]
REQUESTS, CLIENTS, TIMEOUT = 400, 16, 5.0
PAYMENTS_PER_STEP = 4  # per merchant; three events each (pending, processing, completed)
DEFAULT_CAP_PROBE = 24  # streams opened against the default cap
MADE: list = []  # every transition this process makes (a listener of the state machine)


class Reader(threading.Thread):
    """One stream, read in a thread: the event ids it got, with the time each arrived."""

    def __init__(self, base: str, key: str, merchant_id: int):
        super().__init__(daemon=True)
        self.merchant_id = merchant_id
        self.session = requests.Session()
        self.session.trust_env = False
        self.session.headers["Authorization"] = f"Bearer {key}"
        self.url = base + "/api/events"
        self.got: list[tuple[int, float]] = []
        self.status = None
        self._finish = threading.Event()

    def open(self, timeout: float = TIMEOUT) -> int | None:
        try:
            self.response = self.session.get(self.url, stream=True, timeout=(timeout, 600))
        except requests.RequestException:
            return None  # no thread answered in time
        self.status = self.response.status_code
        if self.status == 200:
            self.start()
        return self.status

    def run(self) -> None:
        try:
            for frame in EventStream(self.response).frames():
                if self._finish.is_set():
                    break
                if "event" in frame:
                    self.got.append((int(frame["id"]), time.time()))
        except requests.RequestException:
            pass
        finally:
            self.response.close()  # in the reading thread: a close from another one waits on the read

    def close(self) -> None:
        """Stops reading at the next frame (a heartbeat at the latest) and closes the stream."""
        if self.status == 200:
            self._finish.set()
            self.join(timeout=30)
        elif self.status is not None:
            self.response.close()


def make_events(app, merchant_ids: list[int], step: int) -> dict[int, list[tuple[int, float]]]:
    """PAYMENTS_PER_STEP payments per merchant, each pending -> processing -> completed, each
    change committed (and so published) on its own; returns merchant -> [(event id, time the
    commit began)]: an event's delay runs from there to its arrival on a stream."""
    made: dict[int, list[tuple[int, float]]] = {m: [] for m in merchant_ids}
    with app.app_context():
        for n in range(PAYMENTS_PER_STEP):
            for merchant_id in merchant_ids:
                p = create_payment(
                    "api",
                    "bench",
                    merchant_id=merchant_id,
                    reference=f"SSE{step:03d}{merchant_id}{n:04d}",
                    rail="mpesa",
                    kind="stk_push",
                    status="pending",
                    amount=10000,
                    currency="KES",
                    phone="254708374149",
                    api="gateway",
                    meta={},
                )
                committing = time.time()
                db.session.commit()
                made[merchant_id].append((MADE[-1].event_id, committing))
                for known, to, source in (("pending", "processing", "api"), ("processing", "completed", "callback")):
                    transition(p, to, source, current=known)
                    committing = time.time()
                    db.session.commit()
                    made[merchant_id].append((MADE[-1].event_id, committing))
        db.session.remove()
    return made


def api_latency(base: str, key: str) -> dict:
    def one(session, _i):
        started = time.perf_counter()
        try:
            answer = session.get(
                base + "/api/transactions", headers={"Authorization": f"Bearer {key}"}, timeout=TIMEOUT
            )
            return answer.status_code, time.perf_counter() - started
        except requests.RequestException:
            return None, TIMEOUT

    if not any(status == 200 for status, _t in fire(CLIENTS, one, CLIENTS)):  # no thread left: say so now
        return {"ok": 0, "rate": 0.0, "p50": None, "p95": None}
    started = time.perf_counter()
    results = fire(REQUESTS, one, CLIENTS)
    elapsed = time.perf_counter() - started
    times = sorted(t for status, t in results if status == 200)
    return {
        "ok": len(times),
        "rate": len(times) / elapsed,
        "p50": statistics.median(times) * 1000 if times else None,
        "p95": times[int(len(times) * 0.95) - 1] * 1000 if times else None,
    }


def web_env(**settings) -> dict:
    return {
        "DATABASE_URL": URL,
        "REDIS_URL": REDIS_URL,
        "SECRET_KEY": SECRET,
        "LOG_LEVEL": "WARNING",
        "GATEWAY_RATE_LIMIT": "1000000 per minute",  # one client address sends everything
        "EVENTS_HEARTBEAT": "2",
        "EVENTS_STREAM_LIFETIME": "3600",
        **settings,
    }


def one_process(env: dict) -> Procfile:
    served = Procfile(env, names=["web"])
    served.commands["web"] = served.commands["web"].replace("--workers 2", "--workers 1")
    assert "--workers 1" in served.commands["web"] and "--threads 40" in served.commands["web"]
    return served


def check_delivery(readers: list[Reader], made: dict, opened_at: dict) -> tuple[list[str], list[float]]:
    """Every open stream got exactly its merchant's events made since it opened, in order."""
    problems, latencies = [], []
    committed = {ident: at for events in made.values() for ident, at in events}
    for r in readers:
        expected = [ident for ident, _at in made[r.merchant_id]]
        deadline = time.monotonic() + 10
        while len(r.got) - opened_at[r] < len(expected) and time.monotonic() < deadline:
            time.sleep(0.05)
        got = [ident for ident, _at in r.got[opened_at[r] :]]
        if got != expected:
            problems.append(f"a stream of merchant {r.merchant_id} got {got}, expected {expected}")
        latencies += [at - committed[ident] for ident, at in r.got[opened_at[r] :] if ident in committed]
        opened_at[r] = len(r.got)
    return problems, latencies


def main() -> None:
    accounts = fresh_database(URL, SECRET)
    merchants = [(accounts[name]["id"], accounts[name]["api_key"]) for name in ("merchant", "other_merchant")]
    key = merchants[0][1]
    app = create_app(
        {"SQLALCHEMY_DATABASE_URI": URL, "REDIS_URL": REDIS_URL, "SECRET_KEY": SECRET, "LOG_LEVEL": "WARNING"}
    )
    app.extensions["redis"].flushdb()
    subscribe(MADE.append)
    print("one web process (the Procfile's web line, --workers 1, 40 threads), no cap on streams", flush=True)
    print(" streams | API answered | API req/s | p50 ms | p95 ms | events ok | event delay p50/max ms | web CPU/s")
    readers: list[Reader] = []
    opened_at: dict = {}
    failures: list[str] = []
    held = 0
    with one_process(web_env(EVENTS_MAX_STREAMS="1000")) as served:
        base = served.web_url
        fire(50, lambda s, i: s.get(base + "/api/health", timeout=10).status_code, CLIENTS)  # warm-up
        for step, k in enumerate(STEPS):
            while len(readers) < k:
                merchant_id, merchant_key = merchants[len(readers) % 2]
                reader = Reader(base, merchant_key, merchant_id)
                if reader.open() != 200:
                    print(f"   stream {len(readers) + 1} did not open: {reader.status or 'no answer'}")
                    break
                readers.append(reader)
                opened_at[reader] = 0
            meter = CpuMeter(served).start()
            started = time.perf_counter()
            latency = api_latency(base, key)
            made = make_events(app, [m for m, _k in merchants], step) if latency["ok"] else {}
            problems, delays = check_delivery(readers, made, opened_at) if made else (["not checked"], [])
            web_cpu = meter.stop()["web"] / (time.perf_counter() - started)
            failures += problems if made else []
            fine = latency["ok"] == REQUESTS and not problems
            if fine:
                held = len(readers)
            delay = (
                f"{statistics.median(delays) * 1000:6.1f} / {max(delays) * 1000:6.1f}" if delays else "      -        "
            )
            p50 = f"{latency['p50']:6.1f}" if latency["p50"] is not None else "     -"
            p95 = f"{latency['p95']:6.1f}" if latency["p95"] is not None else "     -"
            print(
                f" {len(readers):7d} | {latency['ok']:5d} of {REQUESTS:3d} | {latency['rate']:9.1f} | {p50} | {p95} | "
                f"{'yes' if not problems else 'NO ':>9} | {delay:>22} | {web_cpu:.2f}",
                flush=True,
            )
            if latency["ok"] == 0:
                break  # no thread left for the API: more streams would only wait too
        for reader in readers:
            reader.close()
    print(f"one process held {held} streams with every API request answered and every event delivered")

    print(f"with the default cap (EVENTS_MAX_STREAMS unset): {DEFAULT_CAP_PROBE} streams asked for", flush=True)
    readers = []
    with one_process(web_env()) as served:
        base = served.web_url
        statuses, retry_after = [], set()
        for n in range(DEFAULT_CAP_PROBE):
            reader = Reader(served.web_url, merchants[n % 2][1], merchants[n % 2][0])
            started = time.perf_counter()
            statuses.append(reader.open())
            if reader.status == 503:
                retry_after.add(reader.response.headers.get("Retry-After"))
                if time.perf_counter() - started > 1:
                    failures.append("a refused stream took more than a second to be refused")
            readers.append(reader)
        latency = api_latency(base, key)
        opened = [r for r in readers if r.status == 200]
        for r in opened:
            opened_at[r] = 0
        made = make_events(app, [m for m, _k in merchants], len(STEPS))
        problems, _delays = check_delivery(opened, made, opened_at)
        failures += problems
        for reader in readers:
            reader.close()
    print(
        f"  {statuses.count(200)} opened, {statuses.count(503)} answered 503 (Retry-After {sorted(retry_after)}); "
        f"API {latency['ok']} of {REQUESTS} answered ({latency['rate']:.0f}/s), "
        f"p50 {latency['p50']:.1f} ms, p95 {latency['p95']:.1f} ms; "
        f"events {'delivered to every open stream' if not problems else 'NOT delivered'}"
    )
    if statuses.count(503) != DEFAULT_CAP_PROBE - app.config["EVENTS_MAX_STREAMS"] or latency["ok"] != REQUESTS:
        failures.append("the default cap did not hold")
    print("correctness:", "OK" if not failures else "FAILED: " + "; ".join(failures))
    if failures:
        raise SystemExit(1)


if __name__ == "__main__":
    main()
