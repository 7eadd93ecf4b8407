"""Benchmark: does the ledger's keyset paging stay fast deep into a large ledger?

Fills a merchant's ledger with N payments (PostgreSQL by default: BENCH_DATABASE_URL), then
times fetching page 1 and a page deep in the ledger, with the portal's keyset cursor and,
for comparison, with OFFSET. Reports ratios measured in this one run (deep / first), so a
noisy shared machine moves both sides alike. Not part of the test suite.

    .venv/bin/python bench/ledger_paging.py [rows]
"""

import os
import statistics
import sys
import time
from datetime import timedelta

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from flask_migrate import upgrade  # noqa: E402
from sqlalchemy import insert, text  # noqa: E402

from portal import create_app  # noqa: E402
from portal.extensions import db  # noqa: E402
from portal.models import Merchant, Payment  # noqa: E402
from portal.services import ledger  # noqa: E402
from portal.timeutil import utcnow  # noqa: E402

ROWS = int(sys.argv[1]) if len(sys.argv) > 1 else 200_000
URL = os.environ.get("BENCH_DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/bench")  # wiped each run
REPEATS = 15


def fill(merchant_id: int) -> None:
    start = utcnow() - timedelta(seconds=ROWS)
    batch = []
    for i in range(ROWS):
        batch.append(
            {
                "merchant_id": merchant_id,
                "reference": f"BENCH{i:09d}",
                "rail": "mpesa",
                "kind": "stk_push",
                "status": "completed",
                "amount": 10000,
                "currency": "KES",
                "phone": "254708374149",
                "api": "checkout",
                "meta": {},
                "created_at": start + timedelta(seconds=i),
                "updated_at": start + timedelta(seconds=i),
            }
        )
        if len(batch) == 10_000:
            db.session.execute(insert(Payment), batch)
            batch = []
    if batch:
        db.session.execute(insert(Payment), batch)
    db.session.commit()
    if db.engine.dialect.name == "postgresql":
        db.session.execute(text("ANALYZE payments"))
        db.session.commit()


def timed(fn) -> float:
    samples = []
    for _ in range(REPEATS):
        t = time.perf_counter()
        fn()
        samples.append(time.perf_counter() - t)
    return statistics.median(samples)


def ensure_database(url: str) -> None:
    """Creates the benchmark's own PostgreSQL database when it does not exist yet."""
    if not url.startswith("postgresql"):
        return
    import psycopg

    base, _, name = url.rpartition("/")
    with psycopg.connect(base + "/postgres", autocommit=True) as conn:
        if not conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,)).fetchone():
            conn.execute(f'CREATE DATABASE "{name}"')


def main() -> None:
    ensure_database(URL)
    app = create_app({"SQLALCHEMY_DATABASE_URI": URL, "REDIS_URL": "", "LOG_LEVEL": "WARNING"})
    with app.app_context():
        if db.engine.dialect.name == "postgresql":
            db.session.execute(text("DROP SCHEMA public CASCADE; CREATE SCHEMA public"))
            db.session.commit()
        upgrade()
        merchant = Merchant(name="Bench", settings={})
        db.session.add(merchant)
        db.session.commit()
        print(f"filling {ROWS:,} payments on {db.engine.dialect.name} ...", flush=True)
        fill(merchant.id)

        query = ledger.filtered(merchant.id, ledger.LedgerFilter())
        deep_offset = ROWS - 2 * ledger.PAGE_SIZE
        cursor_row = query.order_by(Payment.created_at.desc(), Payment.id.desc()).offset(deep_offset - 1).limit(1).one()
        cursor = ledger.encode_cursor(cursor_row)

        first = timed(lambda: ledger.page(query, None))
        deep_keyset = timed(lambda: ledger.page(query, cursor))
        deep_off = timed(
            lambda: (
                query.order_by(Payment.created_at.desc(), Payment.id.desc())
                .offset(deep_offset)
                .limit(ledger.PAGE_SIZE + 1)
                .all()
            )
        )
        print(f"page 1:                         {first * 1000:8.2f} ms")
        print(
            f"page near row {deep_offset:,} (keyset): {deep_keyset * 1000:8.2f} ms   "
            f"ratio deep/first {deep_keyset / first:6.2f}"
        )
        print(
            f"page near row {deep_offset:,} (OFFSET): {deep_off * 1000:8.2f} ms   "
            f"ratio deep/first {deep_off / first:6.2f}"
        )


if __name__ == "__main__":
    main()
