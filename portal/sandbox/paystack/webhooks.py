"""The Paystack simulator's webhooks: `{"event", "data"}` as Paystack sends them, signed in
`x-paystack-signature` (hex HMAC-SHA512 of the exact body bytes, keyed with the integration's
secret key: Paystack has no separate webhook secret), POSTed to the integration's webhook URL by
the delivery module and retried as Paystack's test mode retries (hourly, ten times; the
SANDBOX_PAYSTACK_WEBHOOK_* settings). Only 2xx counts as received. No event id: none exists."""

import hashlib
import hmac
import json

from flask import current_app

from portal.models import SandboxPaystackIntegration
from portal.sandbox import delivery

SIGNATURE = "x-paystack-signature"


def sign(body: bytes, secret_key: str) -> str:
    return hmac.new(secret_key.encode(), body, hashlib.sha512).hexdigest()


def retry_policy() -> delivery.RetryPolicy:
    config = current_app.config
    return delivery.every(config["SANDBOX_PAYSTACK_WEBHOOK_RETRY_EVERY"], config["SANDBOX_PAYSTACK_WEBHOOK_RETRIES"])


def send(integration: SandboxPaystackIntegration, event: str, data: dict, subject: str) -> int:
    """Schedules `event` to the integration's webhook URL (none set: nothing is sent, as on
    Paystack). Call it inside the transaction that decides the event: the delivery goes out when
    it commits. Returns the number of copies scheduled."""
    url = integration.webhook_url
    if not url:
        return 0
    body = json.dumps({"event": event, "data": data}, separators=(",", ":")).encode()
    rows = delivery.deliver(
        url,
        body,
        provider="paystack",
        kind=event,
        subject=subject,
        headers={"Content-Type": "application/json", SIGNATURE: sign(body, integration.secret_key)},
        retry=retry_policy(),
        timeout=current_app.config["SANDBOX_PAYSTACK_WEBHOOK_TIMEOUT"],
    )
    return len(rows)
