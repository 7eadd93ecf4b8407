"""One provisioning hook: services give merchants simulator credentials through the registry the
sandbox fills when it is mounted, and no service, API, portal or webhook module imports the sandbox."""

import ast
import re
from pathlib import Path

import pytest
from sqlalchemy import text

from portal import create_app
from portal.extensions import db
from portal.models import Merchant, SandboxApp, SandboxKeyPair, SandboxPaystackIntegration, User
from portal.sandbox.daraja.stk import PUBLIC_PASSKEY, PUBLIC_SHORTCODE
from portal.services.merchants import NoSandbox, create_merchant, seed_demo
from tests.conftest import TEST_CONFIG

PORTAL = Path(__file__).resolve().parents[2] / "portal"


def sandbox_imports(package: str) -> list[str]:
    found = []
    for path in sorted((PORTAL / package).rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            names = []
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module:
                names = [node.module] + [f"{node.module}.{alias.name}" for alias in node.names]
            found += [f"{path.relative_to(PORTAL)}: {name}" for name in names if name.startswith("portal.sandbox")]
    return found


@pytest.mark.parametrize("package", ["services", "api", "web", "webhooks"])
def test_no_service_api_portal_or_webhook_module_imports_the_sandbox(package):
    assert sandbox_imports(package) == []


def test_a_new_merchant_gets_a_daraja_app_named_after_it_and_the_public_shortcode(app, ctx):
    merchant = create_merchant("Kiosk 42", "kiosk@example.com", "a-long-password")
    [sandbox_app] = SandboxApp.query.all()
    assert sandbox_app.name == "Kiosk 42"
    assert (merchant.daraja_consumer_key, merchant.daraja_consumer_secret) == (
        sandbox_app.consumer_key,
        sandbox_app.consumer_secret,
    )
    assert (merchant.daraja_shortcode, merchant.daraja_passkey) == (PUBLIC_SHORTCODE, PUBLIC_PASSKEY)


def test_a_new_merchant_gets_the_apps_initiator_and_the_simulators_certificate(app, ctx):
    first = create_merchant("Kiosk 42", "kiosk@example.com", "a-long-password")
    second = create_merchant("Kiosk 43", "kiosk43@example.com", "a-long-password")
    apps = {a.name: a for a in SandboxApp.query.all()}
    for merchant in (first, second):
        assert merchant.daraja_initiator_name == apps[merchant.name].initiator_name == "testapi"
        assert merchant.daraja_initiator_password == apps[merchant.name].initiator_password
        assert merchant.has_daraja_initiator
    assert first.daraja_initiator_password != second.daraja_initiator_password  # each app its own
    [pair] = SandboxKeyPair.query.all()  # one key pair, shared
    assert first.daraja_certificate == second.daraja_certificate == pair.certificate
    assert pair.certificate.startswith("-----BEGIN CERTIFICATE-----")
    raw = db.session.execute(text("SELECT daraja_initiator_password FROM merchants WHERE id = :id"), {"id": first.id})
    assert first.daraja_initiator_password not in raw.scalar()  # encrypted at rest
    raw_key = db.session.execute(text("SELECT private_key FROM sandbox_key_pairs")).scalar()
    assert "PRIVATE KEY" not in raw_key and "PRIVATE KEY" in pair.private_key


def test_a_new_merchant_gets_a_paystack_integration_its_secret_key_encrypted_at_rest(app, ctx):
    merchant = create_merchant("Kiosk 42", "kiosk@example.com", "a-long-password")
    [integration] = SandboxPaystackIntegration.query.all()
    assert integration.business_name == "Kiosk 42"
    assert merchant.paystack_secret_key == integration.secret_key and merchant.has_paystack
    assert merchant.paystack_public_key == integration.public_key
    assert re.fullmatch(r"sk_test_[0-9a-f]{40}", merchant.paystack_secret_key)
    assert re.fullmatch(r"pk_test_[0-9a-f]{40}", merchant.paystack_public_key)
    assert integration.webhook_url == app.config["PUBLIC_BASE_URL"] + "/api/payments/webhook"
    row = db.session.execute(
        text("SELECT paystack_secret_key, paystack_public_key FROM merchants WHERE id = :id"), {"id": merchant.id}
    ).one()
    assert merchant.paystack_secret_key not in row[0] and row[1] == merchant.paystack_public_key
    kept = db.session.execute(text("SELECT secret_key, secret_key_hash FROM sandbox_paystack_integrations")).one()
    assert merchant.paystack_secret_key not in kept[0] + kept[1]  # the simulator keeps it encrypted and hashed


def test_seed_demo_gives_a_merchant_seeded_before_paystack_its_keys(app, ctx):
    first = seed_demo()
    merchant = db.session.get(Merchant, first["merchant"]["id"])
    merchant.paystack_secret_key = merchant.paystack_public_key = None
    db.session.commit()
    again = seed_demo()
    assert again["merchant"]["paystack_secret_key"].startswith("sk_test_")
    assert again["merchant"]["paystack_secret_key"] != first["merchant"]["paystack_secret_key"]
    assert again["other_merchant"] == first["other_merchant"]  # the others untouched
    assert SandboxApp.query.count() == 2  # no second Daraja app for it


def test_without_the_sandbox_nothing_is_mounted_and_credentials_cannot_be_provisioned(ctx):
    off = create_app(dict(TEST_CONFIG, SANDBOX=False))
    assert "provisioners" not in off.extensions
    assert not [rule for rule in off.url_map.iter_rules() if rule.rule.startswith("/sandbox")]
    with off.app_context():
        with pytest.raises(NoSandbox):
            create_merchant("No Sandbox", "nosandbox@example.com", "a-long-password", sandbox_credentials=True)
        db.session.rollback()
        merchant = create_merchant("Plain", "plain@example.com", "a-long-password")  # the default: none asked
        assert merchant.daraja_consumer_key is None
        assert SandboxApp.query.count() == 0
        assert [u.email for u in User.query.all()] == ["plain@example.com"]
        db.session.delete(User.query.one())
        db.session.delete(db.session.get(Merchant, merchant.id))
        db.session.commit()
        db.session.remove()
