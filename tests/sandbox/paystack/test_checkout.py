"""The Paystack simulator's hosted checkout over HTTP (the browser tests drive it as a person):
paying, failing and cancelling, where each sends the customer, what it does to the transaction
and which webhook follows."""

import re
from urllib.parse import parse_qs, urlsplit

import pytest
import requests

from tests.helpers import Checkout, settled


def charge_success(receiver, reference: str) -> list[dict]:
    return [b for b in receiver.bodies_at("/paystack/webhook") if b["data"].get("reference") == reference]


def test_the_page_shows_the_shop_the_customer_and_the_amount(paystack):
    checkout = Checkout(paystack.initialize(email="jane@example.com", amount=150000)["authorization_url"])
    assert "Demo Shop" in checkout.page and "jane@example.com" in checkout.page and "KES 1,500.00" in checkout.page
    assert "<script>" not in checkout.page and "style=" not in checkout.page  # the portal's CSP


def test_paying_by_card_sends_the_customer_back_with_the_reference_and_charge_success(paystack, hooks):
    data = paystack.initialize(callback_url="https://shop.example/paid?order=7", reference="card-1")
    answer = Checkout(data["authorization_url"]).post("card", card_number="4084 0840 8408 4081")
    assert answer.status_code == 303
    back = urlsplit(answer.headers["Location"])
    assert (back.netloc, back.path) == ("shop.example", "/paid")
    assert parse_qs(back.query) == {"order": ["7"], "trxref": ["card-1"], "reference": ["card-1"]}
    tx = paystack.verify("card-1")
    assert (tx["status"], tx["channel"], tx["gateway_response"]) == ("success", "card", "Successful")
    assert tx["authorization"]["last4"] == "4081" and tx["authorization"]["reusable"] is True
    [event] = hooks.wait_at("/paystack/webhook")
    assert event["event"] == "charge.success" and event["data"]["reference"] == "card-1"


@pytest.mark.parametrize(
    "action, fields, gateway_response",
    [
        ("card", {"card_number": "4084080000005408"}, "Declined"),
        ("card", {"card_number": "4084 0800 0067 0037"}, "Insufficient Funds"),
        ("fail", {}, "Declined"),
        ("mpesa", {"phone": "0712 341 032"}, "Request cancelled by user"),
    ],
)
def test_a_failed_payment_goes_back_too_and_sends_no_webhook(app, paystack, hooks, action, fields, gateway_response):
    data = paystack.initialize(callback_url="https://shop.example/paid")
    answer = Checkout(data["authorization_url"]).post(action, **fields)
    assert answer.status_code == 303 and f"reference={data['reference']}" in answer.headers["Location"]
    tx = paystack.verify(data["reference"])
    assert (tx["status"], tx["gateway_response"]) == ("failed", gateway_response)
    settled(app)
    assert charge_success(hooks, data["reference"]) == []


def test_paying_by_mpesa_goes_by_the_numbers_ending(app, paystack, hooks):
    paid = paystack.initialize(callback_url="https://shop.example/paid", amount=50000)  # within the M-Pesa balance
    Checkout(paid["authorization_url"]).post("mpesa", phone="+254 712 345 678")
    tx = paystack.verify(paid["reference"])
    assert (tx["status"], tx["channel"], tx["authorization"]["bank"]) == ("success", "mobile_money", "M-PESA")
    assert re.fullmatch(r"[A-Z0-9]{10}", tx["receipt_number"])
    lost = paystack.initialize(callback_url="https://shop.example/paid", amount=50000)
    Checkout(lost["authorization_url"]).post("mpesa", phone="0712349999")
    assert paystack.verify(lost["reference"])["status"] == "success"
    settled(app)
    assert len(charge_success(hooks, paid["reference"])) == 1
    assert charge_success(hooks, lost["reference"]) == []  # paid, the webhook lost


def test_cancelling_leaves_it_abandoned_and_goes_to_the_cancel_action(paystack):
    with_action = paystack.initialize(
        callback_url="https://shop.example/paid", metadata={"cancel_action": "https://shop.example/cart"}
    )
    answer = Checkout(with_action["authorization_url"]).post("cancel")
    assert answer.status_code == 303 and answer.headers["Location"] == "https://shop.example/cart"
    assert paystack.verify(with_action["reference"])["status"] == "abandoned"
    without = paystack.initialize(callback_url="https://shop.example/paid")
    assert "reference=" in Checkout(without["authorization_url"]).post("cancel").headers["Location"]


def test_without_a_callback_url_the_page_says_what_happened(paystack):
    checkout = Checkout(paystack.initialize(amount=150000)["authorization_url"])
    answer = checkout.post("card", card_number="4084084084084081")
    assert (
        answer.status_code == 200
        and "Payment successful" in answer.text
        and "KES 1,500.00 paid to Demo Shop" in answer.text
    )
    again = checkout.post("card", card_number="4084084084084081")  # the page, reloaded and sent again
    assert again.status_code == 409 and "Payment successful" in again.text
    assert Checkout(checkout.url).page.count("Pay by card") == 0  # the form is gone


def test_a_wrong_card_number_or_phone_is_shown_on_the_form(paystack):
    data = paystack.initialize()
    checkout = Checkout(data["authorization_url"])
    card = checkout.post("card", card_number="1234 5678 9012 3456")
    assert card.status_code == 422 and "That is not a card number" in card.text
    phone = checkout.post("mpesa", phone="12345")
    assert phone.status_code == 422 and "Enter an M-Pesa number" in phone.text
    assert paystack.verify(data["reference"])["status"] == "abandoned"


def test_an_unknown_checkout_is_a_page_not_json(live_server):
    answer = requests.get(f"{live_server}/sandbox/paystack/checkout/nosuchcode", timeout=10)
    assert answer.status_code == 404 and answer.headers["Content-Type"].startswith("text/html")
    assert "There is no payment at this address" in answer.text


def test_the_forms_need_the_pages_csrf_token(paystack):
    data = paystack.initialize()
    forged = requests.post(
        data["authorization_url"] + "/card", data={"card_number": "4084084084084081"}, allow_redirects=False, timeout=10
    )
    assert forged.status_code == 303 and forged.headers["Location"] == urlsplit(data["authorization_url"]).path
    assert paystack.verify(data["reference"])["status"] == "abandoned"


def test_the_pages_policy_lets_its_forms_lead_back_to_the_shop_and_nowhere_else(paystack):
    data = paystack.initialize(
        callback_url="https://shop.example:8443/paid", metadata={"cancel_action": "http://cart.example/x"}
    )
    policy = requests.get(data["authorization_url"], timeout=10).headers["Content-Security-Policy"]
    assert "form-action 'self' http://cart.example https://shop.example:8443;" in policy
    assert "script-src 'self'" in policy and "style-src 'self'" in policy
    odd = paystack.initialize(callback_url="https://shop.example;script-src*/paid")
    policy = requests.get(odd["authorization_url"], timeout=10).headers["Content-Security-Policy"]
    assert "form-action 'self';" in policy and "script-src*" not in policy


def test_a_checkout_address_no_access_code_can_have_is_not_found(live_server):
    for code in ("ws_CO%00", "%FF", "a" * 300, "ABCDEFGHIJKLMNO"):
        answer = requests.get(f"{live_server}/sandbox/paystack/checkout/{code}", timeout=10)
        assert answer.status_code == 404, code


def test_the_checkout_offers_only_the_channels_initialize_named(paystack):
    data = paystack.initialize(channels=["mobile_money"])
    checkout = Checkout(data["authorization_url"])
    assert "Pay by M-Pesa" in checkout.page and "Pay by card" not in checkout.page
    assert checkout.post("card", card_number="4084084084084081").status_code == 409
    assert paystack.verify(data["reference"])["status"] == "abandoned"
