"""The Daraja client for a merchant: its credentials, the base URL (the sandbox or Safaricom);
and what the portal may say about the certificate a merchant pasted."""

from dataclasses import dataclass
from datetime import datetime

from cryptography.hazmat.primitives import hashes
from flask import current_app

from portal.models import Merchant
from portal.providers.daraja import DarajaClient
from portal.providers.daraja_results import read_certificate
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


def daraja_initiator_for(merchant: Merchant) -> DarajaClient:
    """A client that can also pay out (B2C) and ask Transaction Status. Raises NotConfigured
    when the merchant's Daraja credentials or its initiator (name, password, certificate) are missing."""
    client = daraja_for(merchant)
    if not merchant.has_daraja_initiator:
        raise NotConfigured(
            "M-Pesa payouts need the initiator name, its password and Safaricom's certificate in the settings"
        )
    client.initiator_name = merchant.daraja_initiator_name
    client.initiator_password = merchant.daraja_initiator_password
    client.certificate_pem = merchant.daraja_certificate
    return client


@dataclass(frozen=True)
class CertificateInfo:
    subject: str
    expires: datetime  # naive UTC, as the database stores times
    fingerprint: str  # SHA-256, colon-separated hex, as certificate viewers show it


def describe_certificate(pem: str) -> CertificateInfo:
    """Raises ValueError unless `pem` is a PEM X.509 certificate of an RSA key."""
    certificate = read_certificate(pem)
    return CertificateInfo(
        subject=certificate.subject.rfc4514_string(),
        expires=certificate.not_valid_after_utc.replace(tzinfo=None),
        fingerprint=certificate.fingerprint(hashes.SHA256()).hex(":").upper(),
    )


def source_problem(source_ip: str | None) -> str | None:
    """Why a request from `source_ip` may not be taken as Daraja's (DARAJA_CALLBACK_IPS), or None."""
    allowed = [ip.strip() for ip in current_app.config["DARAJA_CALLBACK_IPS"].split(",") if ip.strip()]
    if allowed and source_ip not in allowed:
        return f"source address {source_ip} is not on the Daraja allowlist"
    return None
