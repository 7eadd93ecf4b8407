"""The Paystack simulator in a browser: a customer at the hosted checkout pays or fails and is
sent back to the shop with the reference; an M-Pesa charge is approved on the virtual phone."""

import re

import pytest
from playwright.sync_api import expect

from tests.browser.conftest import DESKTOP, PHONE, reaches_the_phone, screenshot
from tests.sandbox.support import Paystack, Receiver, paystack_keys, set_paystack_webhook


@pytest.fixture
def shop(app, accounts, live_server):
    """The shop: its Paystack integration, and a server that takes both the customer coming back
    (/paid) and the webhooks (/paystack/webhook)."""
    receiver = Receiver()
    receiver.thread.start()
    paystack = Paystack(live_server, paystack_keys(app, accounts)[0])
    app.config["SANDBOX_PAYSTACK_WEBHOOK_RETRY_EVERY"] = 0.1
    set_paystack_webhook(app, paystack.key, receiver.at("/paystack/webhook"))
    yield paystack, receiver
    receiver.server.shutdown()


def test_paying_by_card_at_the_checkout_returns_to_the_shop(new_page, shop):
    paystack, receiver = shop
    data = paystack.initialize(email="jane@example.com", amount=150000, callback_url=receiver.at("/paid?order=7"))
    page = new_page(PHONE)
    page.goto(data["authorization_url"])
    expect(page.get_by_role("heading", name="Demo Shop")).to_be_visible()
    expect(page.get_by_text("Pay KES 1,500.00")).to_be_visible()
    screenshot(page, "paystack-checkout-phone")
    expect(page.get_by_label("Card number")).to_have_value("4084 0840 8408 4081")
    page.get_by_role("button", name="Pay by card").click()
    page.wait_for_url(re.compile(r"/paid\?"))
    assert f"trxref={data['reference']}" in page.url and f"reference={data['reference']}" in page.url
    assert "order=7" in page.url
    [event] = receiver.wait_at("/paystack/webhook")
    assert (event["event"], event["data"]["reference"]) == ("charge.success", data["reference"])
    assert paystack.verify(data["reference"])["status"] == "success"


def test_failing_at_the_checkout_returns_to_the_shop_with_a_failed_transaction(new_page, shop):
    paystack, receiver = shop
    data = paystack.initialize(amount=50000, callback_url=receiver.at("/paid"))
    page = new_page()
    page.goto(data["authorization_url"])
    page.get_by_role("button", name="Fail payment").click()
    page.wait_for_url(re.compile(r"/paid\?"))
    assert f"reference={data['reference']}" in page.url
    tx = paystack.verify(data["reference"])
    assert (tx["status"], tx["gateway_response"]) == ("failed", "Declined")


def test_a_declined_card_and_a_mistyped_one_without_a_callback_url(new_page, shop):
    paystack, _receiver = shop
    data = paystack.initialize(amount=50000)
    page = new_page(DESKTOP)
    page.goto(data["authorization_url"])
    screenshot(page, "paystack-checkout-desktop")
    page.get_by_label("Card number").fill("1234 5678 9012 3456")
    page.get_by_role("button", name="Pay by card").click()
    expect(page.get_by_text("That is not a card number")).to_be_visible()
    expect(page.get_by_label("Card number")).to_have_attribute("aria-invalid", "true")
    page.get_by_label("Card number").fill("4084 0800 0000 5408")
    page.get_by_role("button", name="Pay by card").click()
    expect(page.get_by_role("heading", name="Payment failed")).to_be_visible()
    expect(page.get_by_role("button", name="Pay by card")).to_have_count(0)
    screenshot(page, "paystack-checkout-declined")
    assert paystack.verify(data["reference"])["status"] == "failed"


def test_an_mpesa_charge_is_approved_on_the_virtual_phone(app, new_page, shop):
    paystack, receiver = shop
    phone = new_page(PHONE, clock=True)
    phone.goto("/sandbox/phone/254712345678")  # open before the charge: the number is attended
    expect(phone.get_by_text("No messages")).to_be_visible()
    answer = paystack.charge("+254712345678", amount=35000, reference="phone-approved")
    assert answer.json()["data"]["status"] == "pay_offline"
    reaches_the_phone(app, phone, "254712345678")
    expect(phone.get_by_text("Pay KES 350 to DEMO SHOP?")).to_be_visible()
    assert paystack.verify("phone-approved")["status"] == "pending"  # waiting for the person
    screenshot(phone, "paystack-charge-prompt-phone")
    phone.get_by_label("Enter M-PESA PIN").fill("1234")
    phone.get_by_role("button", name="OK").click()
    expect(phone.get_by_text("Confirmed.")).to_be_visible()
    [event] = receiver.wait_at("/paystack/webhook")
    assert (event["event"], event["data"]["reference"]) == ("charge.success", "phone-approved")
    receipt = re.search(r"[A-Z0-9]{10}", phone.locator(".phone-message strong").first.inner_text()).group(0)
    assert event["data"]["receipt_number"] == receipt
    assert paystack.verify("phone-approved")["status"] == "success"


def test_an_mpesa_charge_cancelled_on_the_virtual_phone_fails_with_no_webhook(app, new_page, shop):
    from tests.helpers import settled

    paystack, receiver = shop
    phone = new_page(PHONE, clock=True)
    phone.goto("/sandbox/phone/254712345678")
    expect(phone.get_by_text("No messages")).to_be_visible()
    paystack.charge("+254712345678", amount=10000, reference="phone-cancelled")
    reaches_the_phone(app, phone, "254712345678")
    expect(phone.get_by_text("Pay KES 100 to DEMO SHOP?")).to_be_visible()
    phone.get_by_role("button", name="Cancel").click()
    expect(phone.get_by_text("Request cancelled")).to_be_visible()
    tx = paystack.final("phone-cancelled")
    assert (tx["status"], tx["message"]) == ("failed", "Request cancelled by user")
    settled(app, scheduled=False)  # the prompt's own timeout job waits a minute, and finds it closed
    assert receiver.bodies_at("/paystack/webhook") == []
