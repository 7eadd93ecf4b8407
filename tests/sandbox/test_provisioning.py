"""One provisioning hook: services give merchants simulator credentials through the registry the
sandbox fills when it is mounted, and no service, API, portal or webhook module imports the sandbox."""

import ast
from pathlib import Path

import pytest
from sqlalchemy import text

from portal import create_app
from portal.extensions import db
from portal.models import Merchant, SandboxApp, SandboxKeyPair, User
from portal.sandbox.daraja.stk import PUBLIC_PASSKEY, PUBLIC_SHORTCODE
from portal.services.merchants import NoSandbox, create_merchant
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
