"""The isp document's objects: a merchant's clients (the storefronts that call the public API
with their `client_id`) and the internet packages they sell. Ids are UUIDs, stored as their
36-character text so SQLite and PostgreSQL hold and compare them alike."""

import uuid

from portal.extensions import db
from portal.models.merchant import Merchant, MerchantScoped
from portal.timeutil import utcnow


def new_uuid() -> str:
    return str(uuid.uuid4())


class IspClient(MerchantScoped, db.Model):
    """A storefront allowed to take payments for its merchant; an inactive one is refused (403)."""

    __tablename__ = "isp_clients"
    id = db.Column(db.String(36), primary_key=True, default=new_uuid)
    merchant_id = db.Column(db.Integer, db.ForeignKey("merchants.id"), nullable=False, index=True)
    name = db.Column(db.String(120), nullable=False)
    active = db.Column(db.Boolean, nullable=False, default=True, server_default=db.true())
    created_at = db.Column(db.DateTime, nullable=False, default=utcnow)
    merchant = db.relationship(Merchant)


class InternetPackage(MerchantScoped, db.Model):
    """What a customer buys: the amount of a payment comes from here, never from the request."""

    __tablename__ = "internet_packages"
    id = db.Column(db.String(36), primary_key=True, default=new_uuid)
    merchant_id = db.Column(db.Integer, db.ForeignKey("merchants.id"), nullable=False, index=True)
    name = db.Column(db.String(120), nullable=False)
    price = db.Column(db.BigInteger, nullable=False)  # minor units (cents), whole shillings: M-Pesa takes no cents
    currency = db.Column(db.String(3), nullable=False, default="KES", server_default="KES")
    active = db.Column(db.Boolean, nullable=False, default=True, server_default=db.true())
    created_at = db.Column(db.DateTime, nullable=False, default=utcnow)
