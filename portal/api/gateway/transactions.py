"""GET /api/transactions (paged, filtered, searched) and GET /api/transactions/{id}: the
merchant's M-Pesa ledger in the gateway's words."""

import math

from flask import g, request

from portal import openapi
from portal.api import envelope
from portal.api.gateway import bp, schemas
from portal.models import Payment
from portal.services import ledger
from portal.services.mpesa import b2c
from portal.timeutil import iso_z

TYPES = schemas.TYPES
PAYOUT_STATUSES = schemas.PAYOUT_STATUSES
TYPE_OF = {kind: name for name, kind in TYPES.items()}


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


@openapi.operation(
    "The merchant's M-Pesa transactions, newest first, paged",
    query=schemas.GatewayTransactionsQuery,
    responses={200: schemas.TransactionPage, 400: envelope.Failure},
)
@bp.get("/transactions")
def transactions():
    form = envelope.validate(schemas.GatewayTransactionsQuery, request.args.to_dict())
    page, limit = form.page, form.limit
    kind, status = form.type, form.status
    if status in PAYOUT_STATUSES:
        if kind not in (None, "B2C"):
            raise envelope.Invalid(
                [envelope.field("status", f"{status} is a payout's status: type must be B2C", status)]
            )
        kind, status = "B2C", PAYOUT_STATUSES[status]
    query = ledger.filtered(
        g.merchant.id,
        ledger.LedgerFilter(status=status, rail="mpesa", kind=TYPES.get(kind), q=form.search or None),
    )
    total = query.count()
    rows = query.order_by(Payment.created_at.desc(), Payment.id.desc()).offset((page - 1) * limit).limit(limit).all()
    return envelope.ok(
        [serialise(p) for p in rows],
        pagination={"page": page, "limit": limit, "total": total, "totalPages": math.ceil(total / limit)},
    )


@openapi.operation(
    "One of the merchant's transactions by id",
    responses={200: schemas.OneTransaction, 404: envelope.Failure},
)
@bp.get("/transactions/<int:transaction_id>")
def transaction(transaction_id: int):
    payment = Payment.get_for_merchant(g.merchant.id, id=transaction_id)
    if payment is None:
        return envelope.fail(404, f"No transaction with id {transaction_id}", "NOT_FOUND")
    return envelope.ok(serialise(payment))
