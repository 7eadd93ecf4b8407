"""Reading Paystack's webhooks from the inbox.

Whatever arrives is stored first (webhooks/paystack.py). Then: the event names a ledger row by
its reference (a charge's or a transfer's; a refund's names the transaction it refunds); that
row's merchant's secret key must sign the exact bytes received (`x-paystack-signature`,
compared in constant time), or nothing is applied; then the handler each rail registers for
the event applies it, once however often it is delivered (every transition is a compare-and-set).
"""

import re
from collections.abc import Callable

from sqlalchemy import select

from portal.extensions import db
from portal.models import Merchant, Payment
from portal.providers.paystack import PaystackUnavailable, transaction_of, verify_signature
from portal.services import inbox
from portal.services.paystack import charges

SIGNATURE = "x-paystack-signature"
REFERENCE = re.compile(r"[\x21-\x7e]{1,100}")
BAD_SIGNATURE = "bad or missing x-paystack-signature"

Handler = Callable[[Payment, dict], inbox.Verdict]
_HANDLERS: dict[str, Handler] = {}


def on(*events: str):
    """Registers the decorated `fn(payment, data) -> Verdict` for these events. The payment is
    the row the event's reference names, its signature already checked."""

    def register(fn: Handler) -> Handler:
        for event in events:
            _HANDLERS[event] = fn
        return fn

    return register


def reference_of(event: str, data: dict):
    if event.startswith("refund."):
        transaction = data.get("transaction")
        nested = transaction.get("reference") if isinstance(transaction, dict) else None
        return data.get("transaction_reference") or nested
    return data.get("reference")


@inbox.interpreter("paystack", "webhook")
def interpret(item: inbox.Item) -> inbox.Verdict:
    try:
        body = inbox.read_json(item.raw)
    except inbox.Malformed as exc:
        return inbox.Verdict("invalid", str(exc))
    event = body.get("event") if isinstance(body, dict) else None
    data = body.get("data") if isinstance(body, dict) else None
    if not isinstance(event, str) or not isinstance(data, dict):
        return inbox.Verdict("invalid", 'not a Paystack event ({"event", "data"})')
    event = inbox.clean(event, 64)
    reference = reference_of(event, data)
    if not isinstance(reference, str) or not REFERENCE.fullmatch(reference):
        return inbox.Verdict("invalid", f"{event}: no readable reference")
    found = db.session.execute(
        select(Payment, Merchant)
        .join(Merchant, Merchant.id == Payment.merchant_id)
        .where(Payment.reference == reference)
    ).first()
    if found is None:
        return inbox.Verdict("orphan", f"{event}: no payment has this reference", provider_id=reference[:64])
    payment, merchant = found
    ids = {"provider_id": reference[:64], "payment_id": payment.id, "merchant_id": merchant.id}
    if not verify_signature(item.raw, item.header(SIGNATURE), merchant.paystack_secret_key or ""):
        return inbox.Verdict("rejected", f"{event}: {BAD_SIGNATURE}; nothing applied", **ids)
    handler = _HANDLERS.get(event)
    if handler is None:
        return inbox.Verdict("rejected", f"{event}: not an event this gateway acts on", **ids)
    verdict = handler(payment, data)
    return inbox.Verdict(verdict.outcome, f"{event}: {verdict.detail}", status=payment.status, **ids)


def signature_refused(verdict: inbox.Verdict | None) -> bool:
    """Whether the webhook route should refuse the request (401): its signature did not hold."""
    return verdict is not None and verdict.outcome == "rejected" and BAD_SIGNATURE in verdict.detail


@on("charge.success")
def charge_success(payment: Payment, data: dict) -> inbox.Verdict:
    if payment.rail != charges.RAIL or payment.kind not in (charges.CHECKOUT, charges.CHARGE):
        return inbox.Verdict("rejected", f"{payment.reference} is not a Paystack payment")
    try:
        tx = transaction_of(data)
    except PaystackUnavailable:
        charges.verify_later(payment.id)
        return inbox.Verdict("rejected", "the transaction is unreadable; asking Paystack (verify)")
    outcome = charges.apply_transaction(payment, tx, "webhook", confirmed=False)
    if outcome == "applied":
        return inbox.Verdict("applied", f"payment is now {payment.status}")
    if outcome == "duplicate":
        return inbox.Verdict("duplicate", "already applied")
    if outcome in ("unconfirmed", "mismatch"):
        charges.verify_later(payment.id)
        why = {
            "unconfirmed": f"a success for a payment already {payment.status}",
            "mismatch": "the amount or currency does not match the payment's",
        }[outcome]
        return inbox.Verdict("rejected", f"{why}: not applied as sent, asking Paystack (verify)")
    return inbox.Verdict("rejected", f"payment is {payment.status}; the event changes nothing")


@on("charge.failed")
def charge_failed(payment: Payment, data: dict) -> inbox.Verdict:
    """Paystack sends no such event (the bookings document lists it): if one comes, ask Paystack."""
    if payment.rail != charges.RAIL or payment.is_final:
        return inbox.Verdict("duplicate" if payment.is_final else "rejected", f"payment is {payment.status}")
    charges.verify_later(payment.id)
    return inbox.Verdict("rejected", "a failure is applied as verify tells it: asking Paystack (verify)")
