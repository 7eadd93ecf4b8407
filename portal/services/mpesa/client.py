"""The Daraja client for a merchant: its credentials, the base URL (the sandbox or Safaricom)."""

from flask import current_app

from portal.models import Merchant
from portal.providers.daraja import DarajaClient
from portal.queueing import get_redis
from portal.services.errors import NotConfigured


def daraja_base_url() -> str:
    cfg = current_app.config
    if cfg["DARAJA_BASE_URL"]:
        return cfg["DARAJA_BASE_URL"]
    if cfg["SANDBOX"]:
        return cfg["PUBLIC_BASE_URL"] + "/sandbox/daraja"
    return "https://api.safaricom.co.ke"


def daraja_for(merchant: Merchant) -> DarajaClient:
    """Raises NotConfigured when the merchant has no Daraja credentials."""
    if not merchant.has_daraja:
        raise NotConfigured("M-Pesa credentials are not set up for this merchant")
    return DarajaClient(
        daraja_base_url(),
        merchant.daraja_consumer_key,
        merchant.daraja_consumer_secret,
        merchant.daraja_shortcode,
        merchant.daraja_passkey,
        get_redis(),
        timeout=current_app.config["DARAJA_TIMEOUT"],
        transaction_type=merchant.daraja_transaction_type,
        party_b=merchant.daraja_party_b,
    )
