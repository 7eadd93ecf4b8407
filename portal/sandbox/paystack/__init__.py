"""The Paystack simulator (test mode): integrations and their keys (integrations), transactions
and the hosted checkout (transactions, checkout), M-Pesa charges prompting the virtual phone
(charges), transfer recipients and transfers (transfers), refunds (refunds), signed webhooks
(webhooks), Paystack's shapes (schemas, shapes, errors) and its HTTP face (views)."""

from flask import current_app

from portal.models import Merchant
from portal.sandbox.paystack import integrations

WEBHOOK_PATH = "/api/payments/webhook"  # the app's own Paystack webhook route


def provision(merchant: Merchant) -> None:
    """Gives a merchant a test-mode Paystack integration named after it, with its secret and
    public keys; its webhooks go to the app's own Paystack webhook route under PUBLIC_BASE_URL
    (Paystack's dashboard setting, here set for the merchant)."""
    integration = integrations.create(merchant.name, current_app.config["PUBLIC_BASE_URL"] + WEBHOOK_PATH)
    merchant.paystack_secret_key, merchant.paystack_public_key = integration.secret_key, integration.public_key
