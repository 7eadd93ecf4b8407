"""The payouts page: review a payout (amount, phone, remarks, the name the customer sees), send
it once however often the form comes back, watch its row settle through the worker and the
Daraja simulator, and see C2B receipts arrive."""

import re
import threading
import time

import pytest
from itsdangerous import TimestampSigner, URLSafeTimedSerializer

from portal.extensions import db
from portal.models import IdempotencyRecord, Merchant, Payment, SandboxB2CPayment
from portal.services.mpesa import b2c
from tests.conftest import AuthActions, csrf_token_in, wait_for
from tests.helpers import settled

HTMX = {"HX-Request": "true"}
FORM = {"phone": "0712 345 678", "amount": "1,500", "remarks": "Refund for order 42"}


def token(client) -> str:
    return csrf_token_in(client.get("/payouts").get_data(as_text=True))


def review(client, htmx=True, **fields):
    data = {**FORM, **fields, "csrf_token": token(client)}
    return client.post("/payouts/confirm", data=data, headers=HTMX if htmx else {})


def hidden(html: str) -> dict:
    """The review's hidden fields: what its Send button posts."""
    return dict(re.findall(r'<input[^>]*name="([a-z_]+)"[^>]*value="([^"]*)"', html))


def send(client, fields: dict, htmx=True):
    return client.post("/payouts", data=fields, headers=HTMX if htmx else {})


def reviewed(client, **fields) -> dict:
    answer = review(client, **fields)
    assert answer.status_code == 200, answer.get_data(as_text=True)
    return hidden(answer.get_data(as_text=True))


def payouts(app) -> list[Payment]:
    with app.app_context():
        rows = Payment.query.filter_by(kind="b2c").order_by(Payment.id).all()
        db.session.expunge_all()
        return rows


def row(client, payment_id: int):
    return client.get(f"/payouts/{payment_id}/row", headers=HTMX)


def settled_row(client, payment_id: int) -> str:
    """Polls the row as the page does until it answers 286 (final); its markup."""
    answer = wait_for(
        lambda: (a := row(client, payment_id)).status_code == 286 and a, timeout=30, what="the payout's row to settle"
    )
    return answer.get_data(as_text=True)


def test_the_page_needs_a_signed_in_merchant(client):
    assert "/login" in client.get("/payouts").headers["Location"]
    assert client.get("/payouts/receipts", headers=HTMX).status_code == 401
    assert client.post("/payouts", data=FORM).status_code in (302, 400)


def test_the_page_offers_the_form_and_says_what_the_sandbox_numbers_do(client, signed_in):
    page = client.get("/payouts")
    assert page.status_code == 200 and "HX-Request" in page.headers["Vary"]
    html = page.get_data(as_text=True)
    assert 'aria-current="page">Payouts</a>' in html
    assert 'hx-post="/payouts/confirm"' in html and "Review payout" in html
    assert "ending in 0001 fail" in html
    assert "No payouts yet." in html and "No payments received yet." in html
    assert "not set up yet" not in html  # the demo merchant has its initiator


def test_the_review_reads_the_facts_back_and_creates_nothing(app, client, signed_in):
    answer = review(client)
    assert answer.status_code == 200
    html = answer.get_data(as_text=True)
    assert html.lstrip().startswith('<form id="payout-form"') and "<html" not in html
    assert 'data-fact="amount">KES 1,500.00<' in html
    assert 'data-fact="phone">254712345678<' in html
    assert 'data-fact="remarks">Refund for order 42<' in html
    assert 'data-fact="payee-sees">Demo Shop<' in html
    assert "Send KES 1,500.00" in html and 'hx-post="/payouts"' in html
    fields = hidden(html)
    assert fields["phone"] == "254712345678" and fields["amount"] == "1500" and fields["confirmation"]
    assert reviewed(client)["confirmation"] != fields["confirmation"]  # one key per review
    assert payouts(app) == []


def test_change_brings_the_form_back_filled_in(client, signed_in):
    fields = reviewed(client, amount="20")
    answer = client.post("/payouts/confirm", data={**fields, "edit": "1"}, headers=HTMX)
    assert answer.status_code == 200
    html = answer.get_data(as_text=True)
    assert 'hx-post="/payouts/confirm"' in html and "Review payout" in html
    assert 'value="254712345678"' in html and 'value="20"' in html and "field-error" not in html


def test_send_queues_one_payout_whose_row_settles_with_its_receipt(app, client, signed_in, live_server):
    answer = send(client, reviewed(client))
    assert answer.status_code == 200
    html = answer.get_data(as_text=True)
    assert html.lstrip().startswith('<div id="payout-area"')
    [payout] = payouts(app)
    assert (payout.merchant_id, payout.amount, payout.phone, payout.description) == (
        signed_in,
        150000,
        "254712345678",
        "Refund for order 42",
    )
    assert payout.api == "portal" and payout.idempotency_key
    assert f"Payout {payout.reference} of KES 1,500.00 to 254712345678 queued" in html
    assert 'hx-post="/payouts/confirm"' in html and 'value="254712345678"' not in html  # a fresh form
    first = re.search(rf'<tr id="payout-{payout.id}"[^>]*>', html).group(0)
    assert f'hx-get="/payouts/{payout.id}/row" hx-trigger="every 2s"' in first  # it polls

    final = settled_row(client, payout.id)
    assert 'data-status="completed"' in final and "hx-trigger" not in final
    with app.app_context():
        done = db.session.get(Payment, payout.id)
        assert done.status == "completed" and done.receipt
        assert SandboxB2CPayment.query.filter_by(party_b="254712345678").count() == 1
    assert done.receipt in final


def test_a_double_send_or_a_resent_form_pays_once(app, client, signed_in, live_server):
    fields = reviewed(client, amount="250")
    assert send(client, fields).status_code == 200
    again = send(client, fields)  # a double click
    assert again.status_code == 200
    [payout] = payouts(app)
    assert f"That payout was already sent ({payout.reference})" in again.get_data(as_text=True)
    resent = send(client, fields, htmx=False)  # the browser's "resend the form?"
    assert resent.status_code == 303 and resent.headers["Location"].endswith("/payouts")
    assert "That payout was already sent" in client.get("/payouts").get_data(as_text=True)
    assert len(payouts(app)) == 1

    assert 'data-status="completed"' in settled_row(client, payout.id)
    settled(app)
    with app.app_context():
        assert SandboxB2CPayment.query.filter_by(amount=250).count() == 1  # M-Pesa paid once
    assert len(payouts(app)) == 1
    another = send(client, reviewed(client, amount="250"))  # a new review is a new payout
    assert another.status_code == 200 and len(payouts(app)) == 2


def test_two_sends_of_one_review_at_the_same_moment_pay_once(app, client, signed_in):
    fields = reviewed(client, amount="300")
    session = client.get_cookie("session").value
    start, answers = threading.Barrier(4), []

    def click():
        twin = app.test_client()  # the same browser session, another connection
        twin.set_cookie("session", session)
        start.wait()
        answers.append(send(twin, fields).status_code)

    threads = [threading.Thread(target=click) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert answers == [200] * 4
    assert len(payouts(app)) == 1


def test_a_plain_form_sends_and_comes_back_to_the_page(app, client, signed_in):
    answer = review(client, htmx=False)
    assert answer.status_code == 200
    html = answer.get_data(as_text=True)
    assert "<html" in html and 'data-fact="payee-sees">Demo Shop<' in html and 'id="payout-area"' in html
    sent = send(client, hidden(html), htmx=False)
    assert sent.status_code == 303
    [payout] = payouts(app)
    assert f"Payout {payout.reference} to 254712345678 queued" in client.get("/payouts").get_data(as_text=True)


@pytest.mark.parametrize(
    ("fields", "field", "message"),
    [
        ({"phone": ""}, "phone", "Enter the M-Pesa number to pay."),
        ({"phone": "0730123456"}, "phone", "valid Safaricom number (07XX or 01XX). Example: 0712 345 678."),
        ({"phone": "12345"}, "phone", "Example: 0712 345 678."),
        ({"phone": "٠٧١٢٣٤٥٦٧٨"}, "phone", "digits only"),
        ({"amount": ""}, "amount", "Enter the amount in whole shillings."),
        ({"amount": "9"}, "amount", "M-Pesa pays out from 10 to 250,000 shillings at a time."),
        ({"amount": "250001"}, "amount", "M-Pesa pays out from 10 to 250,000 shillings at a time."),
        ({"amount": "12.50"}, "amount", "whole shillings, without cents (for example 150)"),
        ({"amount": "١٠٠"}, "amount", "whole shillings, without cents"),
        ({"amount": "1_000"}, "amount", "whole shillings, without cents"),
        ({"amount": "9" * 40}, "amount", "whole shillings, without cents"),
        ({"remarks": "  "}, "remarks", "Say what the payout is for"),
        ({"remarks": "x"}, "remarks", "Use 2 to 100 characters."),
        ({"remarks": "x" * 101}, "remarks", "Use 2 to 100 characters."),
        ({"remarks": "Refund\tnow"}, "remarks", "no tabs or line breaks"),
    ],
)
def test_bad_input_comes_back_with_the_problem_in_plain_words(app, client, signed_in, fields, field, message):
    answer = review(client, **fields)
    assert answer.status_code == 422
    html = answer.get_data(as_text=True)
    assert html.lstrip().startswith('<form id="payout-form"') and "<html" not in html
    assert f'<p class="field-error" id="{field}-error" role="alert">' in html
    assert message in html.replace("&#39;", "'")
    assert re.search(rf'name="{field}"[^>]*aria-invalid="true"|aria-invalid="true"[^>]*name="{field}"', html)
    assert html.count('class="field-error"') == 1  # one message, for the one bad field
    plain = review(client, htmx=False, **fields)
    assert plain.status_code == 422 and "<html" in plain.get_data(as_text=True)
    assert payouts(app) == []


def test_a_send_without_a_valid_review_is_refused_and_creates_nothing(app, client, signed_in):
    fields = reviewed(client)
    changed = send(client, {**fields, "amount": "2500"})  # edited after the review
    assert changed.status_code == 422
    assert "The details changed after you reviewed them" in changed.get_data(as_text=True)
    unreviewed = send(client, {k: v for k, v in fields.items() if k != "confirmation"})
    assert unreviewed.status_code == 422 and "Review the payout before sending it." in unreviewed.get_data(as_text=True)
    forged = send(client, {**fields, "confirmation": fields["confirmation"][:-2] + "xx"})
    assert forged.status_code == 422 and "Review the payout before sending it." in forged.get_data(as_text=True)
    bad = send(client, {**fields, "amount": "5"})
    assert bad.status_code == 422 and "M-Pesa pays out from 10" in bad.get_data(as_text=True)

    class Earlier(TimestampSigner):  # signs as of 16 minutes ago
        def get_timestamp(self):
            return int(time.time()) - 16 * 60

    old = URLSafeTimedSerializer(app.config["SECRET_KEY"], salt="payout-confirmation", signer=Earlier)
    stale = old.dumps(["stale-key", signed_in, "254712345678", 1500, "Refund for order 42"])
    expired = send(client, {**fields, "confirmation": stale})
    assert expired.status_code == 422
    html = expired.get_data(as_text=True)
    assert "This review is more than 15 minutes old: review the payout again." in html
    assert html.lstrip().startswith('<div id="payout-area"') and 'value="254712345678"' in html  # kept for review
    assert payouts(app) == []


def test_a_merchant_without_an_initiator_is_told_and_nothing_is_created(app, client, signed_in):
    fields = reviewed(client)  # reviewed while payouts were set up
    with app.app_context():
        merchant = db.session.get(Merchant, signed_in)
        merchant.daraja_initiator_name = merchant.daraja_initiator_password = None
        db.session.commit()
    words = "Payouts are not set up yet: add the initiator name, its password and Safaricom&#39;s certificate"
    assert words.replace("&#39;", "'") in client.get("/payouts").get_data(as_text=True).replace("&#39;", "'")
    at_review = review(client)
    assert at_review.status_code == 422 and words in at_review.get_data(as_text=True)
    at_send = send(client, fields)
    assert at_send.status_code == 422 and words in at_send.get_data(as_text=True)
    assert payouts(app) == []
    with app.app_context():
        assert IdempotencyRecord.query.count() == 0  # the key was released: set up, the same review sends


def test_a_failed_payout_settles_with_its_reason(app, client, signed_in, live_server):
    send(client, reviewed(client, phone="0712 340 001", amount="100"))
    [payout] = payouts(app)
    final = settled_row(client, payout.id)
    assert 'data-status="failed"' in final and "The balance is insufficient for the transaction." in final


def test_another_merchant_gets_404_for_a_payout_and_never_sees_it(app, client, signed_in, accounts):
    with app.app_context():
        payout = b2c.request_payout(
            db.session.get(Merchant, signed_in),
            phone="254712345678",
            amount=5000,
            remarks="Mine",
            occasion=None,
            api="portal",
        )
        ident, reference = payout.id, payout.reference
    assert row(client, ident).status_code == 200  # queued: its owner's row polls
    assert reference in client.get("/payouts").get_data(as_text=True)

    other = app.test_client()
    AuthActions(other).login(accounts["other_merchant"]["email"], accounts["other_merchant"]["password"])
    assert other.get(f"/payouts/{ident}/row", headers=HTMX).status_code == 404
    assert other.get(f"/payouts/{2**31 - 1}/row").status_code == 404
    assert other.get(f"/payouts/{2**63}/row").status_code == 404
    assert reference not in other.get("/payouts").get_data(as_text=True)


def test_c2b_receipts_arrive_in_the_receipts_section(app, client, signed_in, api, accounts):
    registered = api.post("/api/mpesa/c2b/register", json={"responseType": "Completed"})
    assert registered.status_code == 200, registered.text
    simulated = api.post(
        "/api/mpesa/c2b/simulate", json={"msisdn": "254708374149", "amount": 75, "billRefNumber": "Invoice7"}
    )
    assert simulated.status_code == 200, simulated.text

    def listed():
        html = client.get("/payouts/receipts", headers=HTMX).get_data(as_text=True)
        return html if "Invoice7" in html else None

    html = wait_for(listed, timeout=20, what="the C2B receipt in the receipts section")
    with app.app_context():
        [receipt] = Payment.query.filter_by(kind="c2b").all()
    assert html.lstrip().startswith('<section class="card" id="receipts"') and 'hx-trigger="every 5s"' in html
    assert receipt.receipt in html and "KES 75.00" in html and "2547 ***** 149" in html  # M-Pesa masks the payer
    assert receipt.receipt in client.get("/payouts").get_data(as_text=True)

    other = app.test_client()
    AuthActions(other).login(accounts["other_merchant"]["email"], accounts["other_merchant"]["password"])
    assert receipt.receipt not in other.get("/payouts/receipts", headers=HTMX).get_data(as_text=True)
