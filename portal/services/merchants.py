"""Merchant provisioning: merchants with a portal login, API keys, sandbox credentials, and the demo accounts."""

import hashlib
import hmac
import uuid

from flask import current_app

from portal.extensions import db
from portal.models import ApiKey, InternetPackage, IspClient, Merchant, User
from portal.models.water import STATION_KEY_PREFIX
from portal.services import stations


class MerchantExists(ValueError):
    pass


class NoSandbox(RuntimeError):
    """Sandbox credentials were asked for, but no simulator is mounted (SANDBOX is off)."""


def provision_sandbox(merchant: Merchant, *only: str) -> None:
    """Gives `merchant` credentials in every mounted simulator (or in those named). The sandbox
    registers its provisioners in app.extensions["provisioners"] when SANDBOX is on; services
    never import it."""
    provisioners = current_app.extensions.get("provisioners", {})
    if not provisioners:
        raise NoSandbox("sandbox credentials need the simulators: SANDBOX is off")
    for name, provision in provisioners.items():
        if not only or name in only:
            provision(merchant)


def create_merchant(name: str, email: str, password: str, *, sandbox_credentials: bool | None = None) -> Merchant:
    """Creates a merchant and its first portal user. With sandbox credentials (the default
    when SANDBOX is on) it gets a Daraja app and a Paystack integration in the simulators."""
    email = email.strip().lower()
    if User.query.filter_by(email=email).first():
        raise MerchantExists(f"a user with email {email} already exists")
    merchant = Merchant(name=name, settings={})
    db.session.add(merchant)
    user = User(merchant=merchant, email=email)
    user.set_password(password)
    db.session.add(user)
    if sandbox_credentials if sandbox_credentials is not None else current_app.config["SANDBOX"]:
        provision_sandbox(merchant)
    db.session.commit()
    return merchant


def demo_secret(label: str, length: int = 24) -> str:
    """A stable secret for the demo accounts, derived from SECRET_KEY, so seed-demo can be
    re-run and print the same login and key without storing them in clear."""
    digest = hmac.new(current_app.config["SECRET_KEY"].encode(), f"demo:{label}".encode(), hashlib.sha256)
    return digest.hexdigest()[:length]


DEMO_ACCOUNTS = {
    "merchant": ("Demo Shop", "demo@example.com"),
    "other_merchant": ("Other Shop", "other@example.com"),
}


DEMO_STATIONS = {"station": ("STATION001", "Demo station 1"), "station2": ("STATION002", "Demo station 2")}


def seed_demo() -> dict:
    """Creates the demo merchants once (and the demo merchant's isp client, inactive client and
    package, and its two water stations); re-running returns the same credentials and ids."""
    out = {}
    for label, (name, email) in DEMO_ACCOUNTS.items():
        password = demo_secret(f"{label}:password", 16)
        api_key = "mpk_demo_" + demo_secret(f"{label}:api-key", 40)
        user = User.query.filter_by(email=email).first()
        merchant = user.merchant if user else create_merchant(name, email, password)
        if current_app.config["SANDBOX"] and not merchant.has_paystack:  # seeded before the Paystack simulator
            provision_sandbox(merchant, "paystack")
            db.session.commit()
        if ApiKey.find_active(api_key) is None:
            ApiKey.issue(merchant, "Demo key", key=api_key)
            db.session.commit()
        out[label] = {
            "id": merchant.id,
            "name": merchant.name,
            "email": email,
            "password": password,
            "api_key": api_key,
            "paystack_secret_key": merchant.paystack_secret_key,
            "paystack_public_key": merchant.paystack_public_key,
        }
    out["isp"] = _seed_isp(out["merchant"]["id"])
    for label, (code, name) in DEMO_STATIONS.items():
        key = f"{STATION_KEY_PREFIX}demo_" + demo_secret(f"station:{code}", 40)
        stations.ensure_station(out["merchant"]["id"], code, name, key)
        out[label] = {"id": code, "key": key}
    return out


DEMO_PACKAGE_PRICE = 50  # KES: within the sandbox balance, so a demo purchase succeeds


def _demo_uuid(label: str) -> str:
    """A stable UUID for a demo object (derived like the demo secrets), so ids survive a fresh database."""
    return str(uuid.UUID(hex=demo_secret(f"isp:{label}", 32), version=4))


def _seed_isp(merchant_id: int) -> dict:
    """The demo merchant's storefront (active), a retired one (inactive) and a package."""
    wanted = (
        (IspClient, "client", {"name": "Demo hotspot", "active": True}),
        (IspClient, "inactive_client", {"name": "Retired kiosk", "active": False}),
        (InternetPackage, "package", {"name": "Daily 1 GB", "price": DEMO_PACKAGE_PRICE * 100, "active": True}),
    )
    ids = {}
    for model, label, fields in wanted:
        ident = _demo_uuid(label)
        if db.session.get(model, ident) is None:
            db.session.add(model(id=ident, merchant_id=merchant_id, **fields))
        ids[label] = ident
    db.session.commit()
    return {
        "client_id": ids["client"],
        "inactive_client_id": ids["inactive_client"],
        "package_id": ids["package"],
        "package_price": DEMO_PACKAGE_PRICE,
    }
