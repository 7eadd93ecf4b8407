"""The settings page's B2C initiator in a real browser: a pasted certificate that is not one is
explained next to its box, a new password is saved and never shown back."""

from playwright.sync_api import expect

from portal.extensions import db
from portal.models import Merchant
from tests.browser.conftest import screenshot, signed_in


def test_a_merchant_sets_the_initiator_password_and_is_told_about_a_bad_certificate(page, app, accounts):
    signed_in(page, accounts["merchant"])
    page.goto("/settings")
    payouts = page.get_by_role("group", name="M-Pesa payouts (B2C)")
    expect(payouts.get_by_label("Initiator name (API operator)")).to_have_value("testapi")
    expect(payouts.get_by_label("Initiator password")).to_have_value("")
    expect(payouts.get_by_text("CN=Daraja simulator")).to_be_visible()

    payouts.get_by_label("Safaricom's certificate (PEM)").fill("-----BEGIN CERTIFICATE-----\nnot really\n")
    payouts.get_by_label("Initiator password").fill("Typed-Then-Lost!1")
    page.get_by_role("button", name="Save settings").click()
    expect(page.locator("#certificate-error")).to_contain_text("That is not a certificate")
    expect(page.get_by_text("Nothing was saved.")).to_be_visible()
    expect(page.get_by_label("Initiator password")).to_have_value("")  # a typed secret is not echoed back
    screenshot(page, "settings-bad-certificate")

    page.get_by_label("Safaricom's certificate (PEM)").fill("")
    page.get_by_label("Initiator password").fill("N3w-Sandbox-Pass!")
    page.get_by_role("button", name="Save settings").click()
    expect(page.get_by_text("Settings saved.")).to_be_visible()
    assert "N3w-Sandbox-Pass!" not in page.content()
    expect(page.locator("#initiator-password-hint")).to_contain_text("Stored")
    with app.app_context():
        merchant = db.session.get(Merchant, accounts["merchant"]["id"])
        assert merchant.daraja_initiator_password == "N3w-Sandbox-Pass!"
        assert merchant.daraja_certificate.startswith("-----BEGIN CERTIFICATE-----")  # the stored one kept
