"""The Paystack simulator's integrations (a merchant's Paystack account in test mode): their keys,
the bearer check every API call makes, the dashboard's webhook URL, and the balance transfers
and refunds are paid from. Each balance change is one conditional UPDATE, so concurrent
transfers can never take a balance below zero."""

import hashlib
import secrets

from flask import current_app
from sqlalchemy import bindparam, select, update

from portal.extensions import db
from portal.models import SandboxPaystackIntegration
from portal.sandbox.paystack import errors

DOMAIN = "test"  # every simulated key is a test key (sk_test_...): every object says so
INTEGRATION_IDS = 463_000  # Paystack's integration ids are six-digit numbers


def key_hash(secret_key: str) -> str:
    return hashlib.sha256(secret_key.encode("utf-8", "surrogatepass")).hexdigest()


def create(business_name: str, webhook_url: str | None = None) -> SandboxPaystackIntegration:
    """A test-mode integration with a new secret and public key (40 hex characters each, as
    Paystack's), opened with SANDBOX_PAYSTACK_BALANCE. Added to the session, not committed."""
    secret_key = "sk_test_" + secrets.token_hex(20)
    integration = SandboxPaystackIntegration(
        business_name=business_name,
        secret_key=secret_key,
        secret_key_hash=key_hash(secret_key),
        public_key="pk_test_" + secrets.token_hex(20),
        webhook_url=webhook_url,
        balance=current_app.config["SANDBOX_PAYSTACK_BALANCE"] * 100,
    )
    db.session.add(integration)
    return integration


def public_id(integration_id: int) -> int:
    """The integration's id as Paystack shows it (in transfers, refunds, recipients)."""
    return INTEGRATION_IDS + integration_id


_BY_KEY = select(SandboxPaystackIntegration).where(SandboxPaystackIntegration.secret_key_hash == bindparam("h"))


def check_bearer(authorization: str | None) -> SandboxPaystackIntegration:
    """The integration whose secret key is the bearer; Paystack's 401 "Invalid key" otherwise
    (a missing header, a public key, a key of no integration)."""
    value = authorization or ""
    if not value.startswith("Bearer "):
        raise errors.invalid_key()
    key = value[7:].strip()
    integration = db.session.execute(_BY_KEY, {"h": key_hash(key)}).scalars().first() if key else None
    if integration is None:
        raise errors.invalid_key()
    return integration


def by_secret_key(secret_key: str) -> SandboxPaystackIntegration | None:
    return db.session.execute(_BY_KEY, {"h": key_hash(secret_key)}).scalars().first()


def set_webhook_url(integration: SandboxPaystackIntegration, url: str | None) -> None:
    """What a merchant does on Paystack's dashboard (Settings, API Keys & Webhooks)."""
    integration.webhook_url = url or None


def credit(integration_id: int, subunits: int) -> None:
    db.session.execute(
        update(SandboxPaystackIntegration)
        .where(SandboxPaystackIntegration.id == integration_id)
        .values(balance=SandboxPaystackIntegration.balance + subunits)
    )


def debit(integration_id: int, subunits: int) -> bool:
    """Takes `subunits` if the balance holds them; False (nothing taken) otherwise."""
    taken = db.session.execute(
        update(SandboxPaystackIntegration)
        .where(SandboxPaystackIntegration.id == integration_id, SandboxPaystackIntegration.balance >= subunits)
        .values(balance=SandboxPaystackIntegration.balance - subunits)
    ).rowcount
    return bool(taken)


def balance(integration_id: int) -> int:
    return db.session.execute(
        select(SandboxPaystackIntegration.balance).where(SandboxPaystackIntegration.id == integration_id)
    ).scalar_one()
