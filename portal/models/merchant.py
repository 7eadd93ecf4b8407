"""Merchants, their portal users and API keys. Provider credentials are encrypted at rest."""

import hashlib
import secrets
from functools import cache

from flask import abort, current_app
from flask_login import UserMixin
from sqlalchemy.orm import deferred
from werkzeug.security import check_password_hash, generate_password_hash

from portal.crypto import EncryptedText
from portal.extensions import db
from portal.timeutil import utcnow

API_KEY_PREFIX = "mpk_"


class MerchantScoped:
    """The one tenancy guard: merchant data is always reached through its merchant."""

    @classmethod
    def for_merchant(cls, merchant_id: int):
        return cls.query.filter(cls.merchant_id == merchant_id)

    @classmethod
    def get_for_merchant(cls, merchant_id: int, **filters):
        return cls.for_merchant(merchant_id).filter_by(**filters).first()

    @classmethod
    def get_for_merchant_or_404(cls, merchant_id: int, ident: int):
        """Another merchant's row answers exactly like a missing one."""
        row = cls.for_merchant(merchant_id).filter(cls.id == ident).first()
        if row is None:
            abort(404)
        return row


class Merchant(db.Model):
    __tablename__ = "merchants"
    id = db.Column(db.Integer, primary_key=True)
    name = db.Column(db.String(120), nullable=False)
    settings = db.Column(db.JSON, nullable=False, default=dict)
    daraja_consumer_key = db.Column(EncryptedText)
    daraja_consumer_secret = db.Column(EncryptedText)
    daraja_shortcode = db.Column(db.String(12))
    daraja_passkey = db.Column(EncryptedText)
    daraja_transaction_type = db.Column(db.String(32), nullable=False, default="CustomerPayBillOnline")
    daraja_party_b = db.Column(db.String(12))  # till number for buy-goods; paybill uses the shortcode
    # B2C and Transaction Status: the API operator, its password, and Safaricom's certificate (PEM,
    # public) that the password is encrypted to on every call. Deferred: every API request loads its
    # merchant, and only payouts and status queries need these (one SELECT of the group then).
    daraja_initiator_name = deferred(db.Column(db.String(64)), group="initiator")
    daraja_initiator_password = deferred(db.Column(EncryptedText), group="initiator")
    daraja_certificate = deferred(db.Column(db.Text), group="initiator")
    paystack_secret_key = db.Column(EncryptedText)
    paystack_public_key = db.Column(db.String(64))  # pk_...: public, for Paystack's browser SDKs
    # The merchant's own Africa's Talking account for SMS; without one the platform's sends (or the simulator's).
    at_username = db.Column(db.String(64))
    at_api_key = db.Column(EncryptedText)
    at_sender_id = db.Column(db.String(16))
    created_at = db.Column(db.DateTime, nullable=False, default=utcnow)

    @property
    def has_daraja(self) -> bool:
        return bool(
            self.daraja_consumer_key and self.daraja_consumer_secret and self.daraja_shortcode and self.daraja_passkey
        )

    @property
    def has_paystack(self) -> bool:
        return bool(self.paystack_secret_key)

    @property
    def has_africastalking(self) -> bool:
        return bool(self.at_username and self.at_api_key)

    @property
    def has_daraja_initiator(self) -> bool:
        """Whether B2C payouts and Transaction Status queries can be made for this merchant."""
        return bool(self.daraja_initiator_name and self.daraja_initiator_password and self.daraja_certificate)


class User(UserMixin, db.Model):
    __tablename__ = "users"
    id = db.Column(db.Integer, primary_key=True)
    merchant_id = db.Column(db.Integer, db.ForeignKey("merchants.id"), nullable=False, index=True)
    email = db.Column(db.String(254), nullable=False, unique=True)
    password_hash = db.Column(db.String(255), nullable=False)
    # Part of the id flask-login keeps in the session: bumping it ends every session signed in before.
    session_version = db.Column(db.Integer, nullable=False, default=0, server_default="0")
    created_at = db.Column(db.DateTime, nullable=False, default=utcnow)
    merchant = db.relationship(Merchant)

    def get_id(self) -> str:
        return f"{self.id}:{self.session_version}"

    def end_sessions(self) -> None:
        """Every session cookie issued so far stops working, copies included (sign-out, new password)."""
        self.session_version = (self.session_version or 0) + 1

    def set_password(self, password: str) -> None:
        if self.password_hash:  # a changed password signs out whoever knew the old one
            self.end_sessions()
        # Tests choose a cheap method; everyone else gets werkzeug's default (scrypt).
        self.password_hash = generate_password_hash(password, current_app.config["PASSWORD_HASH_METHOD"])

    def check_password(self, password: str) -> bool:
        return check_password_hash(self.password_hash, password)


def hash_api_key(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


class ApiKey(MerchantScoped, db.Model):
    """Stored as a display prefix and the SHA-256 of the key: the key itself is shown once."""

    __tablename__ = "api_keys"
    id = db.Column(db.Integer, primary_key=True)
    merchant_id = db.Column(db.Integer, db.ForeignKey("merchants.id"), nullable=False, index=True)
    name = db.Column(db.String(80), nullable=False)
    prefix = db.Column(db.String(16), nullable=False)
    key_hash = db.Column(db.String(64), nullable=False, unique=True)
    created_at = db.Column(db.DateTime, nullable=False, default=utcnow)
    last_used_at = db.Column(db.DateTime)
    revoked_at = db.Column(db.DateTime)
    merchant = db.relationship(Merchant)

    @staticmethod
    def generate() -> str:
        return API_KEY_PREFIX + secrets.token_urlsafe(32)

    @classmethod
    def issue(cls, merchant: Merchant, name: str, key: str | None = None) -> tuple["ApiKey", str]:
        """Adds a key to the session; returns the row and the plaintext key (shown once)."""
        key = key or cls.generate()
        row = cls(merchant=merchant, name=name, prefix=key[:12], key_hash=hash_api_key(key))
        db.session.add(row)
        return row, key

    @classmethod
    def find_active(cls, key: str) -> "ApiKey | None":
        """The key with its merchant, in one statement (every API request asks)."""
        return db.session.execute(_active_key_query(), {"key_hash": hash_api_key(key)}).scalars().first()


@cache
def _active_key_query():
    """Built once, on first use (the mappers are configured by then)."""
    return (
        db.select(ApiKey)
        .options(db.joinedload(ApiKey.merchant))
        .where(ApiKey.key_hash == db.bindparam("key_hash"), ApiKey.revoked_at.is_(None))
        .limit(1)
    )
