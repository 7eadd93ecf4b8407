"""The Paystack client for a merchant: its secret key, the base URL (the simulator or Paystack)."""

from flask import current_app

from portal.models import Merchant
from portal.providers.paystack import LIVE_URL, PaystackClient
from portal.services.errors import NotConfigured


def paystack_base_url() -> str:
    cfg = current_app.config
    if cfg["PAYSTACK_BASE_URL"]:
        return cfg["PAYSTACK_BASE_URL"]
    if cfg["SANDBOX"]:
        return cfg["PUBLIC_BASE_URL"] + "/sandbox/paystack"
    return LIVE_URL


def paystack_for(merchant: Merchant) -> PaystackClient:
    """Raises NotConfigured when the merchant has no Paystack secret key."""
    if not merchant.has_paystack:
        raise NotConfigured("Paystack is not set up for this merchant: add its secret key in the settings")
    timeout = current_app.config["PAYSTACK_TIMEOUT"]
    return PaystackClient(merchant.paystack_secret_key, paystack_base_url(), timeout=timeout)
