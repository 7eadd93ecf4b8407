"""A push M-Pesa refused reads as refused, in a merchant's words, and stays out of the success
rate; the dashboard's figures have their own polled partial and a chart with values."""

import html as htmllib
import re
from datetime import timedelta

import pytest

from portal.models import Payment
from portal.timeutil import utcnow
from portal.web.refusals import refusal
from tests.web.test_payments_pages import add, add_todays_mix, post_request

BUSY = "Unable to lock subscriber, a transaction is already in process for the current subscriber"


def text(answer) -> str:
    return htmllib.unescape(answer.get_data(as_text=True))


def test_a_push_to_a_busy_customer_is_listed_as_refused_in_plain_words(app, client, auth, signed_in, live_server):
    app.config["SANDBOX_CALLBACK_DELAY"] = 60  # the first prompt stays open on the phone
    assert post_request(client, auth, phone="0712345678", amount="10").status_code == 200
    assert post_request(client, auth, phone="0712345678", amount="20").status_code == 422
    with app.app_context():
        refused = Payment.query.filter_by(amount=2000).one()
        assert (refused.status, refused.checkout_request_id, refused.refused) == ("failed", None, True)
        assert Payment.query.filter_by(amount=1000).one().refused is False
        pid = refused.id

    ledger = text(client.get("/payments"))
    row = re.search(rf'<tr id="payment-{pid}".*?</tr>', ledger, re.S).group(0)
    assert 'data-status="refused">refused</span>' in row and "Customer busy with another prompt" in row
    assert "Unable to lock" not in row  # the provider's words are not the ledger's

    page = text(client.get(f"/payments/{pid}"))
    assert "The customer already had another M-Pesa prompt open" in page and "Nothing was charged" in page
    assert f"500.001.1001: {BUSY}" in page  # the raw text stays on the payment page

    assert "refused" in text(client.get("/payments?status=failed"))  # still found under its status
    figures = text(client.get("/dashboard/figures"))
    assert "2 payments" in figures and "no outcomes yet" in figures and "1 refused by M-Pesa" in figures


@pytest.mark.parametrize(
    "desc,short",
    [
        (BUSY, "Customer busy with another prompt"),
        ("Merchant does not exist", "Business number not recognised"),
        ("[MerchantValidate] - Wrong credentials", "Passkey not accepted"),
        ("Invalid Access Token", "Daraja keys not accepted"),
        ("Error Occurred: Spike Arrest Violation", "M-Pesa too busy"),
        ("M-Pesa unreachable", "M-Pesa could not be reached"),
        ("Bad Request - Invalid PhoneNumber", "M-Pesa did not accept the customer's phone number"),
        ("Bad Request - Invalid CallBackURL", "M-Pesa did not accept the portal's result address"),
        ("Something new from Safaricom", "Refused by M-Pesa"),
    ],
)
def test_daraja_refusals_in_a_merchants_words(desc, short):
    payment = Payment(status="failed", result_code="500.001.1001", result_desc=desc)
    assert refusal(payment).short == short and "Nothing was charged" in refusal(payment).sentence


@pytest.mark.parametrize(
    "fields",
    [
        {"status": "failed", "checkout_request_id": "ws_CO_1", "result_desc": "The balance is insufficient"},
        {"status": "cancelled"},
        {"status": "pending"},
        {"status": "completed", "checkout_request_id": "ws_CO_2"},
    ],
)
def test_payments_that_reached_the_customer_are_not_refused(fields):
    payment = Payment(**fields)
    assert not payment.refused and refusal(payment) is None


def test_refused_pushes_stay_out_of_the_success_rate(app, client, signed_in):
    now = utcnow()
    add_todays_mix(app, signed_in, now)
    add(
        app,
        signed_in,
        3,
        status="failed",
        checkout_request_id=None,
        receipt=None,
        result_code="500.001.1001",
        result_desc=BUSY,
        created_at=now - timedelta(minutes=1),
    )
    figures = text(client.get("/dashboard/figures"))
    today = figures[figures.index(">Today<") : figures.index(">This week<")]
    assert "KES 300.00" in today and "7 payments" in today
    assert "67% successful" in today and "3 refused by M-Pesa" in today  # 2 of 3, not 2 of 6


def test_figures_poll_and_the_chart_has_a_value_axis_and_values(app, client, signed_in):
    now = utcnow()
    add(app, signed_in, 2, amount=lambda i: (i + 1) * 10000, created_at=lambda i: now - timedelta(minutes=i + 1))
    figures = client.get("/dashboard/figures", headers={"HX-Request": "true"})
    html = figures.get_data(as_text=True)
    assert figures.status_code == 200 and "<html" not in html
    assert re.search(r'<div id="figures" hx-get="/dashboard/figures" hx-trigger="every \d+s"', html)
    ticks = re.findall(r'class="tick">([^<]+)<', html)
    assert ticks == ["KES 0", "KES 100", "KES 200", "KES 300"]  # 300 completed today
    assert re.findall(r'class="value">([^<]+)<', html) == ["300"]  # one bar with a value: today's
    assert html.count('class="bar"') == 14
    assert "KES 300.00" in html and 'id="figures"' in client.get("/").get_data(as_text=True)


def test_an_empty_chart_still_has_its_zero_line(client, signed_in):
    html = client.get("/dashboard/figures").get_data(as_text=True)
    assert re.findall(r'class="tick">([^<]+)<', html) == ["KES 0"] and 'class="value"' not in html
