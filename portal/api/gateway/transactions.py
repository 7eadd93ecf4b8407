"""GET /api/transactions (paged, filtered, searched) and GET /api/transactions/{id}: the
merchant's M-Pesa ledger in the gateway's words."""

import math

from flask import g, request

from portal.api import envelope
from portal.api.gateway import bp
from portal.api.parsing import has_unsafe_characters, whole_number
from portal.models import Payment, PaymentStatus
from portal.services import ledger
from portal.services.mpesa import b2c
from portal.timeutil import iso_z

TYPES = {"STK_PUSH": "stk_push", "C2B": "c2b", "B2C": "b2c"}
# A payout's own words for the states it uses (services/mpesa/b2c.py), as filters.
PAYOUT_STATUSES = {"queued": PaymentStatus.PENDING, "sent": PaymentStatus.PROCESSING}
TYPE_OF = {kind: name for name, kind in TYPES.items()}
MAX_LIMIT = 100


def serialise(p: Payment) -> dict:
    return {
        "id": p.id,
        "type": TYPE_OF.get(p.kind, p.kind.upper()),
        "status": b2c.name_of(p.status) if p.kind == "b2c" else p.status,
        "amount": p.amount_major,
        "currency": p.currency,
        "phoneNumber": p.phone,
        "reference": p.reference,
        "accountReference": p.account_reference,
        "transactionDesc": p.description,
        "mpesaReceiptNumber": p.receipt,
        "checkoutRequestId": p.checkout_request_id,
        "merchantRequestId": p.merchant_request_id,
        "conversationId": p.conversation_id,
        "resultCode": p.result_code,
        "resultDesc": p.result_desc,
        "api": p.api,
        "createdAt": iso_z(p.created_at),
        "updatedAt": iso_z(p.updated_at),
        "completedAt": iso_z(p.completed_at),
    }


def _whole(name: str, default: int, low: int, high: int, errors: list) -> int:
    raw = request.args.get(name)
    if raw is None or raw == "":
        return default
    value = whole_number(raw)
    if value is None or not low <= value <= high:
        errors.append(envelope.field(name, f"{name} must be a whole number from {low} to {high:,}", raw))
        return default
    return value


def _choice(name: str, allowed, errors: list) -> str | None:
    raw = request.args.get(name)
    if not raw:
        return None
    if raw not in allowed:
        errors.append(envelope.field(name, f"{name} must be one of {', '.join(allowed)}", raw))
        return None
    return raw


@bp.get("/transactions")
def transactions():
    errors: list = []
    page = _whole("page", 1, 1, 100_000, errors)
    limit = _whole("limit", 20, 1, MAX_LIMIT, errors)
    kind = _choice("type", tuple(TYPES), errors)
    status = _choice("status", PaymentStatus.ALL + tuple(PAYOUT_STATUSES), errors)
    if status in PAYOUT_STATUSES:
        if kind not in (None, "B2C"):
            errors.append(envelope.field("status", f"{status} is a payout's status: type must be B2C", status))
        kind, status = "B2C", PAYOUT_STATUSES[status]
    search = request.args.get("search")
    if search is not None and (len(search) > 100 or has_unsafe_characters(search)):
        errors.append(envelope.field("search", "search must be up to 100 characters, without control characters"))
    if errors:
        raise envelope.Invalid(errors)
    query = ledger.filtered(
        g.merchant.id, ledger.LedgerFilter(status=status, rail="mpesa", kind=TYPES.get(kind), q=search or None)
    )
    total = query.count()
    rows = query.order_by(Payment.created_at.desc(), Payment.id.desc()).offset((page - 1) * limit).limit(limit).all()
    return envelope.ok(
        [serialise(p) for p in rows],
        pagination={"page": page, "limit": limit, "total": total, "totalPages": math.ceil(total / limit)},
    )


@bp.get("/transactions/<int:transaction_id>")
def transaction(transaction_id: int):
    payment = Payment.get_for_merchant(g.merchant.id, id=transaction_id)
    if payment is None:
        return envelope.fail(404, f"No transaction with id {transaction_id}", "NOT_FOUND")
    return envelope.ok(serialise(payment))
