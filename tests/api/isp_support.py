"""Helpers of the isp API tests: the demo storefront, its calls, and what the simulator saw."""

import uuid

from portal.extensions import db
from portal.models import InternetPackage, IspClient, Payment, SandboxStkRequest

PKG_REFERENCE = r"PKG-\d{14}-[a-z0-9]{6}"


class Storefront:
    """A storefront's view of the isp API on the live server: no key, only its client_id."""

    def __init__(self, api, client_id: str, package_id: str):
        self.api, self.client_id, self.package_id = api, client_id, package_id

    def initiate(self, phone="+254712345678", description="Internet package - Professional Plan", **fields):
        body = {
            "client_id": self.client_id,
            "package_id": self.package_id,
            "phone_number": phone,
            "description": description,
            **fields,
        }
        return self.api.post("/api/v1/payments/initiate", json=body)

    def status(self, checkout_id, **fields):
        return self.api.post(
            "/api/v1/payments/status", json={"client_id": self.client_id, "checkout_id": checkout_id, **fields}
        )


def add_client(app, merchant_id: int, name="Second site", active=True) -> str:
    with app.app_context():
        client = IspClient(id=str(uuid.uuid4()), merchant_id=merchant_id, name=name, active=active)
        db.session.add(client)
        db.session.commit()
        return client.id


def add_package(app, merchant_id: int, price_kes=50, name="Daily 1 GB", active=True) -> str:
    with app.app_context():
        package = InternetPackage(
            id=str(uuid.uuid4()), merchant_id=merchant_id, name=name, price=price_kes * 100, active=active
        )
        db.session.add(package)
        db.session.commit()
        return package.id


def payment(app, checkout_id) -> Payment:
    with app.app_context():
        row = Payment.query.filter_by(checkout_request_id=checkout_id).one()
        db.session.expunge(row)
        return row


def payment_count(app) -> int:
    with app.app_context():
        return Payment.query.count()


def queries_seen_by_daraja(app, checkout_id) -> int:
    """How many STK queries the simulator answered about this push (what Daraja's spike arrest counts)."""
    with app.app_context():
        return SandboxStkRequest.query.filter_by(checkout_request_id=checkout_id).one().queries
