"""Benchmark: STK initiations per second when the provider takes 300 ms to answer.

Starts the Procfile's `web` and `sandbox` lines (as the Procfile says) on PostgreSQL
(BENCH_DATABASE_URL), with a delaying proxy process (bench/latency_proxy.py) between the web
process and the simulator, so "Daraja" answers in LATENCY seconds and its CPU is not the web's.
CLIENTS clients initiate payments to distinct phones; prints the rate over the ideal
(CLIENTS / LATENCY; target >= 0.80) and checks in SQL that every initiation made exactly one
payment, in `processing`, with its CheckoutRequestID. Ratios from one run; not part of the tests.

    .venv/bin/python bench/stk_initiation.py [initiations]
"""

import os
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import psycopg  # noqa: E402
import requests  # noqa: E402

from bench.procfile import ROOT, CpuMeter, Procfile, fire, free_port, fresh_database, per_operation  # noqa: E402

CLIENTS = int(os.environ.get("BENCH_CLIENTS", "64"))
LATENCY = float(os.environ.get("BENCH_LATENCY", "0.3"))
INITIATIONS = int(sys.argv[1]) if len(sys.argv) > 1 else CLIENTS * 32  # about 10 s: a steady state
URL = os.environ.get("BENCH_DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/bench")  # wiped each run
REDIS_URL = os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379/13")  # flushed each run
SECRET = "bench-secret-key-not-for-production"
TARGET = 0.80


def check(expected: int) -> None:
    with psycopg.connect(URL) as conn:
        rows = conn.execute(
            "SELECT count(*), count(*) FILTER (WHERE status = 'processing'), count(DISTINCT checkout_request_id),"
            " (SELECT count(*) FROM sandbox_stk_requests) FROM payments"
        ).fetchone()
    ok = rows == (expected, expected, expected, expected)
    print(
        "correctness:",
        f"OK: {expected} initiations, {expected} payments in processing, each with its own "
        "CheckoutRequestID and one simulator prompt"
        if ok
        else f"FAILED: (payments, processing, distinct CheckoutRequestIDs, prompts) = {rows}, expected {expected} each",
    )
    if not ok:
        raise SystemExit(1)


def main() -> None:
    accounts = fresh_database(URL, SECRET)
    key = accounts["merchant"]["api_key"]
    import redis

    redis.Redis.from_url(REDIS_URL).flushdb()
    proxy_port = free_port()
    env = {
        "DATABASE_URL": URL,
        "REDIS_URL": REDIS_URL,
        "SECRET_KEY": SECRET,
        "LOG_LEVEL": "WARNING",
        "SANDBOX": "1",
        "SANDBOX_CALLBACK_DELAY": "3600",  # no worker runs: the prompts stay open
        # one client address sends everything: the per-IP limits are not the subject here
        "CHECKOUT_RATE_LIMIT": "1000000 per minute",
        "CHECKOUT_INITIATE_RATE_LIMIT": "1000000 per minute",
    }
    served = Procfile(env, names=["web", "sandbox"], daraja_base_url=f"http://127.0.0.1:{proxy_port}/sandbox/daraja")
    proxy = subprocess.Popen(
        [
            sys.executable,
            os.path.join(ROOT, "bench", "latency_proxy.py"),
            str(proxy_port),
            served.sandbox_url,
            str(LATENCY),
        ],
        start_new_session=True,  # its own session: its CPU is counted apart
    )
    phones = iter(range(10**8))

    def initiate(session, _i):
        answer = session.post(
            served.web_url + "/initiate_payment",
            timeout=60,
            json={"phone": f"2547{next(phones):08d}", "amount": 100},
            headers={"Authorization": f"Bearer {key}"},
        )
        return answer.status_code

    try:
        with served:
            print(
                f"{INITIATIONS} initiations from {CLIENTS} clients, provider answering in {LATENCY * 1000:.0f} ms, "
                "against the Procfile's web and sandbox processes",
                flush=True,
            )
            requests.get(f"http://127.0.0.1:{proxy_port}/", timeout=30)  # the proxy is up
            warm = fire(CLIENTS * 4, initiate, CLIENTS)  # pools, imports, the OAuth token
            meter = CpuMeter(served, {"proxy": proxy.pid}).start()
            started = time.perf_counter()
            answers = fire(INITIATIONS, initiate, CLIENTS)
            elapsed = time.perf_counter() - started
            spent = meter.stop()
    finally:
        proxy.terminate()
        proxy.wait()
    bad = [a for a in warm + answers if a != 200]
    if bad:
        raise SystemExit(f"{len(bad)} initiations not answered 200: {bad[:5]}")
    rate, ideal = INITIATIONS / elapsed, CLIENTS / LATENCY
    print(f"initiations:            {rate:8.1f} /s")
    print(f"ideal (clients/latency): {ideal:7.1f} /s")
    print(f"ratio rate / ideal:      {rate / ideal:7.2f}   (target >= {TARGET:.2f})")
    ceiling = os.cpu_count() / (sum(spent.values()) / INITIATIONS)
    web_alone = os.cpu_count() / ((spent["web"] + spent["sandbox"]) / INITIATIONS)
    print(f"CPU per initiation:      {per_operation(spent, INITIATIONS)}")
    print(
        f"the {os.cpu_count()} cores at this CPU per initiation allow {ceiling:.0f} /s (the rate is "
        f"{rate / ceiling:.2f} of that); web and sandbox with the cores to themselves {web_alone:.0f} /s"
    )
    # The target is absolute (a share of clients / latency), so it holds only where the machine's
    # cores can pay for that many initiations: say what each may cost, and what the rest spent.
    budget = os.cpu_count() / (TARGET * ideal)
    others = (sum(spent.values()) - spent["web"]) / INITIATIONS
    print(
        f"at {TARGET:.2f} of the ideal the {os.cpu_count()} cores leave {budget * 1000:.1f} ms of CPU per "
        f"initiation for every process; all but the web process spent {others * 1000:.1f} ms"
    )
    check(len(warm) + INITIATIONS)


if __name__ == "__main__":
    main()
