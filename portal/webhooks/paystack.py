"""Paystack's webhooks, at the two paths the documents give them (bookings: /api/payments/webhook;
water: /api/payments/paystack/webhook): one inbox kind for both, since a Paystack integration has
one webhook URL and either path may receive any of its events (services/paystack/events.py reads
them). Whatever arrives is stored first; a bad or missing signature is answered 401 and changes
nothing; anything else is answered 200, which is all Paystack looks at (it retries anything else)."""

from typing import Any

from flask import jsonify
from pydantic import BaseModel, Field

from portal import openapi
from portal.api import envelope
from portal.services.paystack import events
from portal.webhooks import provider_blueprint, receive

bp = provider_blueprint("paystack_webhooks", __name__)
openapi.section(
    bp,
    "provider callbacks",
    "Where Paystack posts events: any bytes are stored first, then read; signed with the merchant's secret key",
    responses={413: openapi.Answer(None, "The body is over the size limit (refused unread)")},
)


class PaystackEvent(BaseModel):
    """Paystack's event: `x-paystack-signature` is the hex HMAC-SHA512 of these exact bytes, keyed
    with the secret key of the merchant whose reference `data` names."""

    event: str = Field(description="charge.success, transfer.success, transfer.failed, transfer.reversed, refund.*")
    data: dict[str, Any] = Field(description="The transaction, transfer or refund, as Paystack's API shows it")


class Received(BaseModel):
    success: bool
    message: str


def _webhook():
    verdict = receive("paystack", "webhook")
    if events.signature_refused(verdict):
        return envelope.fail(401, "Invalid signature", "INVALID_SIGNATURE")
    return jsonify(success=True, message="Webhook received")


_DOCUMENTED = dict(
    body=openapi.Raw(PaystackEvent),
    responses={
        200: openapi.Answer(Received, "Received (and applied once, if it is about a known payment)"),
        401: openapi.Answer(envelope.Failure, "The signature does not hold: nothing was applied"),
    },
)


@openapi.operation("Paystack's events for bookings payments and escrow releases", **_DOCUMENTED)
@bp.post("/api/payments/webhook")
def bookings_webhook():
    return _webhook()


@openapi.operation("Paystack's events for water payments", **_DOCUMENTED)
@bp.post("/api/payments/paystack/webhook")
def water_webhook():
    return _webhook()
