"""Benchmark: STK callback ingest under the Procfile's web process, against its trivial route.

Inserts N payments in `processing` (PostgreSQL: BENCH_DATABASE_URL), starts the Procfile's `web`
line (gunicorn, as the Procfile says), then posts N success callbacks plus N/4 duplicates (a
fifth of all posts) from CLIENTS threads, and the same number of GET /health from the same
client at the same concurrency, the two loads taking turns in ROUNDS rounds. Prints ingest
rate / trivial rate (target >= 0.50), checks in SQL that every payment was applied exactly
once, and counts the SQL statements of one callback and of one duplicate in-process. Ratios
from one run; not part of the test suite.

    .venv/bin/python bench/callback_ingest.py [payments]
"""

import json
import os
import random
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from sqlalchemy import event, insert, text  # noqa: E402

from bench.procfile import CpuMeter, Procfile, fire, fresh_database, per_operation  # noqa: E402
from portal import create_app  # noqa: E402
from portal.extensions import db  # noqa: E402
from portal.models import Payment  # noqa: E402
from portal.services.links import callback_token  # noqa: E402
from portal.timeutil import utcnow  # noqa: E402

PAYMENTS = int(sys.argv[1]) if len(sys.argv) > 1 else 2000
CLIENTS = int(os.environ.get("BENCH_CLIENTS", "32"))
URL = os.environ.get("BENCH_DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/bench")  # wiped each run
REDIS_URL = os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379/13")  # flushed each run
SECRET = "bench-secret-key-not-for-production"
PHONE = "254708374149"
TARGET = 0.50
ROUNDS = 5


def callback(payment: dict) -> tuple[str, bytes]:
    path = f"/callback?ref={payment['reference']}&token={payment['token']}"
    body = {
        "Body": {
            "stkCallback": {
                "MerchantRequestID": payment["merchant_request_id"],
                "CheckoutRequestID": payment["checkout_request_id"],
                "ResultCode": 0,
                "ResultDesc": "The service request is processed successfully.",
                "CallbackMetadata": {
                    "Item": [
                        {"Name": "Amount", "Value": 100.0},
                        {"Name": "MpesaReceiptNumber", "Value": f"UKB{payment['n']:07d}"},
                        {"Name": "Balance"},
                        {"Name": "TransactionDate", "Value": 20261124120000},
                        {"Name": "PhoneNumber", "Value": int(PHONE)},
                    ]
                },
            }
        }
    }
    return path, json.dumps(body).encode()


def make_payments(app, merchant_id: int, n: int, prefix: str = "CB") -> list[dict]:
    now = utcnow()
    rows = []
    with app.app_context():
        for i in range(n):
            ref = f"{prefix}{i:08d}"
            rows.append(
                {
                    "merchant_id": merchant_id,
                    "reference": ref,
                    "rail": "mpesa",
                    "kind": "stk_push",
                    "status": "processing",
                    "amount": 10000,
                    "currency": "KES",
                    "phone": PHONE,
                    "api": "checkout",
                    "meta": {},
                    "created_at": now,
                    "updated_at": now,
                    "checkout_request_id": f"ws_CO_{prefix}{i:010d}",
                    "merchant_request_id": f"{i}-bench",
                }
            )
        db.session.execute(insert(Payment), rows)
        db.session.commit()
        return [dict(r, n=i, token=callback_token(r["reference"])) for i, r in enumerate(rows)]


def statements_per_callback(app, merchant_id: int) -> tuple[int, int]:
    """SQL statements of one callback and of its duplicate, counted in-process (test client)."""
    payment = make_payments(app, merchant_id, 1, prefix="STMT")[0]
    path, body = callback(payment)
    count = [0]

    def counter(*_args):
        count[0] += 1

    with app.app_context():
        event.listen(db.engine, "before_cursor_execute", counter)
    client = app.test_client()
    counts = []
    for _copy in range(2):
        count[0] = 0
        client.post(path, data=body, content_type="application/json")
        counts.append(count[0])
    with app.app_context():
        event.remove(db.engine, "before_cursor_execute", counter)
    return counts[0], counts[1]


def check(app, payments: list[dict], duplicates: int) -> None:
    with app.app_context():
        q = lambda sql: db.session.execute(text(sql)).all()  # noqa: E731
        refs = tuple(p["reference"] for p in payments)
        by_status = dict(q("SELECT status, count(*) FROM payments WHERE reference LIKE 'CB%' GROUP BY status"))
        events = q(
            "SELECT count(*), count(DISTINCT e.payment_id) FROM payment_events e JOIN payments p "
            "ON p.id = e.payment_id WHERE p.reference LIKE 'CB%' AND e.to_status = 'completed'"
        )[0]
        outcomes = dict(
            q(
                "SELECT c.outcome, count(*) FROM callbacks c JOIN payments p ON p.id = c.payment_id "
                "WHERE p.reference LIKE 'CB%' GROUP BY c.outcome"
            )
        )
    n = len(refs)
    problems = []
    if by_status != {"completed": n}:
        problems.append(f"payments by status {by_status}, expected all {n} completed")
    if tuple(events) != (n, n):
        problems.append(f"{events[0]} completed events over {events[1]} payments, expected exactly one each")
    if outcomes.get("duplicate", 0) != duplicates or sum(outcomes.values()) != n + duplicates:
        problems.append(f"callback outcomes {outcomes}, expected {duplicates} duplicates of {n + duplicates}")
    print(
        "correctness:",
        "OK: every payment applied exactly once, every duplicate stored as 'duplicate'"
        if not problems
        else "FAILED: " + "; ".join(problems),
    )
    if problems:
        raise SystemExit(1)


def timed(n: int, request, start: int = 0) -> float:
    """Seconds to answer requests start..start+n-1 from CLIENTS threads, every one 200."""
    started = time.perf_counter()
    answers = fire(n, lambda s, i: request(s, start + i), CLIENTS)
    elapsed = time.perf_counter() - started
    bad = [a for a in answers if a != 200]
    if bad:
        raise SystemExit(f"{len(bad)} of {n} requests not answered 200: {bad[:5]}")
    return elapsed


def add(total: dict, spent: dict) -> dict:
    return {name: total.get(name, 0.0) + seconds for name, seconds in spent.items()}


def main() -> None:
    accounts = fresh_database(URL, SECRET)
    merchant_id = accounts["merchant"]["id"]
    app = create_app(
        {
            "SQLALCHEMY_DATABASE_URI": URL,
            "REDIS_URL": REDIS_URL,
            "SECRET_KEY": SECRET,
            "ENCRYPTION_KEY": "",
            "LOG_LEVEL": "WARNING",
            "RATELIMIT_ENABLED": False,
        }
    )
    app.extensions["redis"].flushdb()
    payments = make_payments(app, merchant_id, PAYMENTS)
    posts = [callback(p) for p in payments] + [callback(p) for p in random.sample(payments, PAYMENTS // 4)]
    random.shuffle(posts)
    env = {
        "DATABASE_URL": URL,
        "REDIS_URL": REDIS_URL,
        "SECRET_KEY": SECRET,
        "LOG_LEVEL": "WARNING",
        "CHECKOUT_RATE_LIMIT": "1000000 per minute",
    }  # one client address sends everything
    print(
        f"{PAYMENTS:,} payments; {len(posts):,} callbacks ({PAYMENTS // 4:,} duplicates) and "
        f"{len(posts):,} GET /health from {CLIENTS} clients, against the Procfile's web process",
        flush=True,
    )
    with Procfile(env, names=["web"]) as served:
        base = served.web_url

        def health(s, i):
            return s.get(base + "/health", timeout=60).status_code

        def post(s, i):
            path, body = posts[i]
            return s.post(base + path, data=body, timeout=60, headers={"Content-Type": "application/json"}).status_code

        timed(200, health)  # warm-up: pools, imports
        # The two loads take turns, ROUNDS times, so that both meet the same machine (another
        # process's burst, a slower minute) and their ratio is one run's, not one minute's.
        meter, seconds, cpu = CpuMeter(served), {"trivial": 0.0, "ingest": 0.0}, {"trivial": {}, "ingest": {}}
        size = -(-len(posts) // ROUNDS)
        for start in range(0, len(posts), size):
            n = min(size, len(posts) - start)
            for name, request in (("trivial", health), ("ingest", post)):
                meter.start()
                seconds[name] += timed(n, request, start)
                cpu[name] = add(cpu[name], meter.stop())
    trivial, ingest = len(posts) / seconds["trivial"], len(posts) / seconds["ingest"]
    cpu_trivial, cpu_ingest = cpu["trivial"], cpu["ingest"]
    print(f"trivial route (GET /health): {trivial:8.1f} requests/s")
    print(f"callback ingest:             {ingest:8.1f} callbacks/s")
    print(f"ratio ingest / trivial:      {ingest / trivial:8.2f}   (target >= {TARGET:.2f})")
    print(f"CPU per GET /health:  {per_operation(cpu_trivial, len(posts))}")
    print(f"CPU per callback:     {per_operation(cpu_ingest, len(posts))}")
    check(app, payments, PAYMENTS // 4)
    first, duplicate = statements_per_callback(app, merchant_id)
    print(f"SQL statements: {first} for a callback, {duplicate} for its duplicate")


if __name__ == "__main__":
    main()
