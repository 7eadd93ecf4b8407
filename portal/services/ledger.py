"""The merchant's ledger as the portal reads it: filters, search, keyset pages, CSV rows.

Pages are keyset-paged on (created_at, id), newest first, so page 1,000 costs what page 1
does on the (merchant_id, created_at) index."""

import re
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from decimal import Decimal

from sqlalchemy import and_, or_

from portal.models import Payment, PaymentStatus
from portal.timeutil import as_nairobi, nairobi_midnight_utc

PAGE_SIZE = 50
STATUSES = PaymentStatus.ALL
RAILS = ("mpesa", "paystack")
KINDS = ("stk_push", "c2b", "b2c", "checkout", "charge", "transfer", "reversal")


@dataclass
class LedgerFilter:
    status: str | None = None
    rail: str | None = None
    kind: str | None = None
    date_from: date | None = None  # East Africa dates, inclusive
    date_to: date | None = None
    q: str | None = None


def filtered(merchant_id: int, f: LedgerFilter):
    query = Payment.for_merchant(merchant_id)
    if f.status:
        query = query.filter(Payment.status == f.status)
    if f.rail:
        query = query.filter(Payment.rail == f.rail)
    if f.kind:
        query = query.filter(Payment.kind == f.kind)
    if f.date_from:
        query = query.filter(Payment.created_at >= nairobi_midnight_utc(f.date_from))
    if f.date_to:
        query = query.filter(Payment.created_at < nairobi_midnight_utc(f.date_to + timedelta(days=1)))
    if f.q:
        query = query.filter(_search(f.q.strip()))
    return query


def _search(q: str):
    """Phone (any form people type, prefix match), our reference, receipt, CheckoutRequestID
    or the merchant's account reference."""
    terms = [
        Payment.reference == q.upper(),
        Payment.receipt == q.upper(),
        Payment.checkout_request_id == q,
        Payment.account_reference.ilike(f"%{_escape(q)}%", escape="\\"),
    ]
    digits = re.sub(r"[\s\-+]", "", q)
    if digits.isdigit() and len(digits) >= 3:
        if digits.startswith("0"):
            digits = "254" + digits[1:]
        terms.append(Payment.phone.like(f"{digits}%") if digits.startswith("254") else Payment.phone.contains(digits))
    return or_(*terms)


def _escape(text: str) -> str:
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


def latest(merchant_id: int, count: int) -> list[Payment]:
    """The merchant's newest payments, newest first."""
    return Payment.for_merchant(merchant_id).order_by(Payment.created_at.desc(), Payment.id.desc()).limit(count).all()


def encode_cursor(payment: Payment) -> str:
    return f"{payment.created_at:%Y%m%dT%H%M%S.%f}_{payment.id}"


def decode_cursor(cursor: str) -> tuple[datetime, int] | None:
    try:
        stamp, _, ident = cursor.partition("_")
        return datetime.strptime(stamp, "%Y%m%dT%H%M%S.%f"), int(ident)
    except ValueError:
        return None


def page(query, cursor: str | None, size: int = PAGE_SIZE) -> tuple[list[Payment], str | None]:
    """One page of `query`, newest first, after `cursor`; returns the rows and the next cursor."""
    after = decode_cursor(cursor) if cursor else None
    if after:
        created, ident = after
        query = query.filter(or_(Payment.created_at < created, and_(Payment.created_at == created, Payment.id < ident)))
    rows = query.order_by(Payment.created_at.desc(), Payment.id.desc()).limit(size + 1).all()
    more = len(rows) > size
    rows = rows[:size]
    return rows, (encode_cursor(rows[-1]) if more else None)


# Nairobi time like every screen, with its offset so a spreadsheet can still convert it.
CSV_HEADER = [
    "created_at_eat",
    "reference",
    "status",
    "amount",
    "currency",
    "phone",
    "account_reference",
    "description",
    "receipt",
    "checkout_request_id",
    "result_code",
    "result_desc",
    "api",
    "rail",
    "kind",
]


def csv_rows(query):
    """Rows for a CSV export, streamed in chunks; amounts in major units from exact decimals;
    cells that a spreadsheet would run as a formula are quoted with a leading apostrophe."""
    yield CSV_HEADER
    for p in query.order_by(Payment.created_at.desc(), Payment.id.desc()).yield_per(500):
        yield [
            _cell(v)
            for v in (
                as_nairobi(p.created_at).isoformat(timespec="seconds"),
                p.reference,
                p.status,
                Decimal(p.amount).scaleb(-2),
                p.currency,
                p.phone,
                p.account_reference,
                p.description,
                p.receipt,
                p.checkout_request_id,
                p.result_code,
                p.result_desc,
                p.api,
                p.rail,
                p.kind,
            )
        ]


def _cell(value) -> str:
    text = "" if value is None else str(value)
    return "'" + text if text[:1] in ("=", "+", "-", "@", "\t", "\r") else text
