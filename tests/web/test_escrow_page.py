"""The escrow page: held bookings listed first, a release reviewed (who is paid, how much, by which
rail, what is kept) then paid once through the worker and the Paystack simulator, a failed
release retried, a refund confirmed, refund-due rows flagged, and another merchant's escrows
answering 404. The settings page chooses the payout rail."""

import re

import pytest

from portal.extensions import db
from portal.models import Escrow, Merchant, Payment
from portal.services import escrow
from tests.conftest import AuthActions, csrf_token_in, wait_for
from tests.escrow_support import held, paid, row

HTMX = {"HX-Request": "true"}


def token(client) -> str:
    return csrf_token_in(client.get("/escrow").get_data(as_text=True))


def hidden(html: str) -> dict:
    """The review's hidden fields: what its Pay button posts."""
    return dict(re.findall(r'<input[^>]*name="([a-z_]+)"[^>]*value="([^"]*)"', html))


def review(client, escrow_id: int, htmx=True, **fields):
    data = {"phone": "0712 345 678", "amount": "500", **fields, "csrf_token": token(client)}
    return client.post(f"/escrow/{escrow_id}/release/confirm", data=data, headers=HTMX if htmx else {})


def reviewed(client, escrow_id: int, **fields) -> dict:
    answer = review(client, escrow_id, **fields)
    assert answer.status_code == 200, answer.get_data(as_text=True)
    return hidden(answer.get_data(as_text=True))


def stored(app, merchant_id: int, booking: str, status: str = "held", n: int = 1, **columns) -> int:
    """A held bookings payment of KES 500 (no provider involved); the escrow's id."""
    with app.app_context():
        payment = Payment(
            merchant_id=merchant_id,
            reference=f"bk-page-{booking}-{n}",
            rail="paystack",
            kind="checkout",
            status="completed",
            amount=50000,
            api="bookings",
            phone="254722000111",
            meta={"bookingId": booking},
        )
        db.session.add(payment)
        db.session.flush()
        fields = {"booking_id": booking, "amount": 50000, "status": status, "meta": {}, **columns}
        row = Escrow(merchant_id=merchant_id, payment_id=payment.id, **fields)
        db.session.add(row)
        db.session.commit()
        return row.id


def test_the_page_needs_a_signed_in_merchant(client):
    assert "/login" in client.get("/escrow").headers["Location"]
    assert client.get("/escrow/1/row", headers=HTMX).status_code == 401


def test_held_bookings_come_first_with_their_flags(app, client, signed_in):
    released = stored(app, signed_in, "booking_old", status="released", payee_phone="254712345678")
    kept = stored(app, signed_in, "booking_new")
    due = stored(
        app, signed_in, "booking_twice", refund_due=True, refund_reason="Booking booking_twice was already paid"
    )
    page = client.get("/escrow")
    assert page.status_code == 200 and "HX-Request" in page.headers["Vary"]
    html = page.get_data(as_text=True)
    assert 'aria-current="page">Escrow</a>' in html
    order = [int(i) for i in re.findall(r'<tr id="escrow-(\d+)"', html)]
    assert order == [due, kept, released]
    assert "Paystack transfer to M-Pesa" in html  # the rail releases pay by
    due_row = html[html.index(f'id="escrow-{due}"') : html.index(f'id="escrow-{kept}"')]
    assert "refund-due" in due_row and "Refund due" in due_row and "already paid" in due_row
    assert ">Release</a>" not in due_row and "button urgent" in due_row
    kept_row = html[html.index(f'id="escrow-{kept}"') : html.index(f'id="escrow-{released}"')]
    assert ">Release</a>" in kept_row and "KES 500.00" in kept_row and "bk-page-booking_new-1" in kept_row
    assert ">Release</a>" not in html[html.index(f'id="escrow-{released}"') :]


def test_a_release_is_reviewed_then_paid_once(app, client, signed_in, live_server):
    escrow_id = held(app, paid(app, signed_in, booking="booking_page")).id
    form = client.get(f"/escrow/{escrow_id}/release", headers=HTMX).get_data(as_text=True)
    assert 'id="escrow-panel"' in form and 'value="500"' in form  # the whole held amount by default
    answer = review(client, escrow_id, amount="420.50")
    html = answer.get_data(as_text=True)
    assert answer.status_code == 200
    assert 'data-fact="amount">KES 420.50<' in html and 'data-fact="phone">254712345678<' in html
    assert 'data-fact="kept">KES 79.50<' in html and 'data-fact="rail">Paystack transfer to M-Pesa<' in html
    fields = hidden(html)
    assert row(app, escrow_id).status == "held"  # nothing moves before the confirmation
    sent = client.post(f"/escrow/{escrow_id}/release", data=fields, headers=HTMX)
    assert sent.status_code == 200
    area = sent.get_data(as_text=True)
    assert 'id="escrow-area"' in area and "Releasing booking booking_page to 254712345678" in area
    again = client.post(f"/escrow/{escrow_id}/release", data=fields, headers=HTMX)  # a double click
    assert "already releasing: nothing more was sent" in again.get_data(as_text=True)
    final = wait_for(
        lambda: (a := client.get(f"/escrow/{escrow_id}/row", headers=HTMX)).status_code == 286 and a,
        timeout=30,
        what="the row to settle",
    )
    assert "status-escrow-released" in final.get_data(as_text=True) and "hx-trigger" not in final.get_data(as_text=True)
    with app.app_context():
        assert Payment.query.filter_by(kind="transfer").count() == 1
        assert db.session.get(Escrow, escrow_id).released_amount == 42050


def test_the_form_names_what_is_wrong(app, client, signed_in):
    escrow_id = stored(app, signed_in, "booking_form")
    cases = [
        ({"phone": "12345"}, "Example: 0712 345 678."),
        ({"amount": ""}, "Enter the amount to pay the teacher."),
        ({"amount": "0"}, "more than zero"),
        ({"amount": "12.345"}, "at most two decimals"),
        ({"amount": "500.01"}, "more than the KES 500 held"),
    ]
    for fields, message in cases:
        answer = review(client, escrow_id, **fields)
        assert answer.status_code == 422 and message in answer.get_data(as_text=True), fields
    with app.app_context():
        escrow.save_payout_rail(db.session.get(Merchant, signed_in), "mpesa")
    answer = review(client, escrow_id, amount="250.50")
    assert answer.status_code == 422 and "whole shillings" in answer.get_data(as_text=True)
    assert row(app, escrow_id).status == "held"


def test_a_confirmation_altered_or_out_of_date_is_reviewed_again(app, client, signed_in):
    escrow_id = stored(app, signed_in, "booking_tamper")
    fields = reviewed(client, escrow_id)
    altered = client.post(f"/escrow/{escrow_id}/release", data={**fields, "amount": "499"}, headers=HTMX)
    assert altered.status_code == 422 and "changed after you reviewed" in altered.get_data(as_text=True)
    unsigned = client.post(f"/escrow/{escrow_id}/release", data={**fields, "confirmation": "x"}, headers=HTMX)
    assert unsigned.status_code == 422 and "Review the release" in unsigned.get_data(as_text=True)
    assert row(app, escrow_id).status == "held"


def test_a_failed_release_is_retried_with_its_payee_and_amount(app, client, signed_in, live_server):
    escrow_id = stored(
        app,
        signed_in,
        "booking_retry",
        status="failed",
        payee_phone="254712345678",
        released_amount=30000,
        failure="Paystack: the transfer failed",
        attempts=1,
    )
    html = client.get("/escrow").get_data(as_text=True)
    assert ">Retry</a>" in html and "Paystack: the transfer failed" in html
    form = client.get(f"/escrow/{escrow_id}/release", headers=HTMX).get_data(as_text=True)
    assert 'value="254712345678"' in form and 'value="300"' in form and "Retry the release" in form
    fields = reviewed(client, escrow_id, phone="254712345678", amount="300")
    assert client.post(f"/escrow/{escrow_id}/release", data=fields, headers=HTMX).status_code == 200
    assert row(app, escrow_id).attempts == 2


def test_a_refund_is_confirmed_then_asked_of_paystack(app, client, signed_in, live_server):
    payment_id = paid(app, signed_in, booking="booking_refund", amount=30000)
    escrow_id = held(app, payment_id).id
    review_html = client.get(f"/escrow/{escrow_id}/refund", headers=HTMX).get_data(as_text=True)
    assert 'data-fact="refund">KES 300.00, all that is held<' in review_html and "Keep it held" in review_html
    assert row(app, escrow_id).status == "held"
    done = client.post(f"/escrow/{escrow_id}/refund", data={"csrf_token": token(client)}, headers=HTMX)
    assert done.status_code == 200 and "asked of Paystack" in done.get_data(as_text=True)
    assert row(app, escrow_id).status == "refunded"
    wait_for(
        lambda: "refunded by Paystack" in client.get(f"/escrow/{escrow_id}/row", headers=HTMX).get_data(as_text=True),
        timeout=20,
        what="refund.processed",
    )
    twice = client.post(f"/escrow/{escrow_id}/refund", data={"csrf_token": token(client)}, headers=HTMX)
    assert "Nothing was refunded" in twice.get_data(as_text=True)


def test_a_plain_form_release_comes_back_to_the_page(app, client, signed_in, live_server):
    escrow_id = held(app, paid(app, signed_in, booking="booking_plain")).id
    answer = review(client, escrow_id, htmx=False)
    html = answer.get_data(as_text=True)
    assert answer.status_code == 200 and "<html" in html and 'id="escrow-panel"' in html
    sent = client.post(f"/escrow/{escrow_id}/release", data=hidden(html))
    assert sent.status_code == 303 and sent.headers["Location"].endswith("/escrow")
    assert "Releasing booking booking_plain" in client.get("/escrow").get_data(as_text=True)


def test_another_merchants_escrow_is_404_and_unchanged(app, client, accounts):
    owner, intruder = accounts["merchant"], accounts["other_merchant"]
    escrow_id = stored(app, owner["id"], "booking_theirs")
    auth = AuthActions(client)
    auth.login(intruder["email"], intruder["password"])
    csrf = token(client)
    assert "booking_theirs" not in client.get("/escrow").get_data(as_text=True)
    for method, path in [
        ("GET", f"/escrow/{escrow_id}/row"),
        ("GET", f"/escrow/{escrow_id}/release"),
        ("POST", f"/escrow/{escrow_id}/release/confirm"),
        ("POST", f"/escrow/{escrow_id}/release"),
        ("GET", f"/escrow/{escrow_id}/refund"),
        ("POST", f"/escrow/{escrow_id}/refund"),
    ]:
        data = {"csrf_token": csrf, "phone": "0712345678", "amount": "500"} if method == "POST" else None
        assert client.open(path, method=method, data=data, headers=HTMX).status_code == 404, path
    assert row(app, escrow_id).status == "held"


@pytest.mark.parametrize(("choice", "rail"), [("mpesa", "mpesa"), ("paystack", "paystack"), ("", "paystack")])
def test_settings_choose_the_payout_rail(app, client, signed_in, choice, rail):
    page = client.get("/settings").get_data(as_text=True)
    assert "Escrow releases" in page and 'name="escrow_payout_rail"' in page
    csrf = csrf_token_in(page)
    answer = client.post("/settings/escrow-rail", data={"escrow_payout_rail": choice, "csrf_token": csrf}, headers=HTMX)
    assert answer.status_code == 200 and f'data-rail="{rail}"' in answer.get_data(as_text=True)
    with app.app_context():
        merchant = db.session.get(Merchant, signed_in)
        assert escrow.payout_rail(merchant) == rail
        assert (merchant.settings or {}).get("escrow_payout_rail") == (choice or None)
    refused = client.post(
        "/settings/escrow-rail", data={"escrow_payout_rail": "cash", "csrf_token": csrf}, headers=HTMX
    )
    assert refused.status_code == 422 and "Choose how releases are paid." in refused.get_data(as_text=True)
