"""POST /api/payments/release-escrow over real HTTP with the worker and the simulators: the
document's answer, its refusals in the {success: false} envelope, one payout for concurrent
releases, and another merchant's booking answering 404 with nothing changed."""

import threading

import pytest

from portal.extensions import db
from portal.models import Escrow, Merchant, Payment, SandboxPaystackTransfer
from portal.services import escrow
from tests.escrow_support import choose_rail, held, paid, row, until

PATH = "/api/payments/release-escrow"


def release(api, booking="booking_1", phone="0712345678", amount=500, **extra):
    return api.post(PATH, json={"bookingId": booking, "teacherPhone": phone, "amount": amount, **extra})


def refused(answer, status: int, code: str) -> dict:
    assert answer.status_code == status, answer.text
    body = answer.json()
    assert body["success"] is False and body["error"] == code and body["message"], body
    return body


@pytest.fixture
def booking(app, api, accounts) -> int:
    """booking_1 of the demo merchant, paid KES 500 and held; the escrow's id."""
    return held(app, paid(app, accounts["merchant"]["id"], amount=50000)).id


def test_a_release_answers_the_document_and_pays_the_teacher(app, api, booking):
    answer = release(api, phone="+254 712 345 678", amount=420.5)
    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert body["success"] is True and body["message"] == "Escrow payment released successfully"
    data = body["data"]
    assert list(data) == ["bookingId", "amount", "teacherPhone", "releasedAt", "status"]
    assert (data["bookingId"], data["amount"], data["teacherPhone"], data["status"]) == (
        "booking_1",
        420.5,
        "254712345678",
        "releasing",
    )
    assert isinstance(data["releasedAt"], int) and data["releasedAt"] > 1_700_000_000_000
    released = until(app, booking, "released", "failed")
    assert (released.status, released.released_amount, released.amount) == ("released", 42050, 50000)


@pytest.mark.parametrize("phone", ["0712345678", "254712345678", "712345678", 254712345678])
def test_every_documented_phone_form_is_taken(app, api, booking, phone):
    answer = release(api, phone=phone, amount=100)
    assert answer.status_code == 200, answer.text
    assert answer.json()["data"]["teacherPhone"] == "254712345678"


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"teacherPhone": "0733123456"}, "teacherPhone"),  # not Safaricom
        ({"teacherPhone": "12345"}, "teacherPhone"),
        ({"teacherPhone": None}, "teacherPhone"),
        ({"amount": 0}, "amount"),
        ({"amount": -5}, "amount"),
        ({"amount": 10.001}, "amount"),
        ({"amount": "500"}, "amount"),
        ({"amount": True}, "amount"),
        ({"amount": None}, "amount"),
        ({"bookingId": ""}, "bookingId"),
        ({"bookingId": "x" * 101}, "bookingId"),
        ({"bookingId": 7}, "bookingId"),
        ({"bookingId": "tab\there"}, "bookingId"),
    ],
)
def test_bad_input_is_refused_naming_the_field(app, api, booking, body, field):
    fields = {"bookingId": "booking_1", "teacherPhone": "0712345678", "amount": 100, **body}
    answer = api.post(PATH, json=fields)
    refused(answer, 400, "VALIDATION_ERROR")
    assert answer.json()["errors"][0]["field"] == field
    assert row(app, booking).status == "held"


def test_more_than_is_held_is_refused(app, api, booking):
    body = refused(release(api, amount=500.01), 400, "AMOUNT_EXCEEDS_ESCROW")
    assert "KES 500 held" in body["message"]
    assert row(app, booking).status == "held"


def test_the_mpesa_rail_takes_whole_shillings_only(app, api, accounts, booking):
    choose_rail(app, accounts["merchant"]["id"], "mpesa")
    refused(release(api, amount=250.5), 400, "INVALID_AMOUNT")
    answer = release(api, amount=250)
    assert answer.status_code == 200, answer.text
    released = until(app, booking, "released", "failed")
    assert (released.status, released.rail, released.released_amount) == ("released", "mpesa", 25000)


def test_an_unknown_booking_is_404_and_a_second_release_409(app, api, booking):
    refused(release(api, booking="booking_404"), 404, "ESCROW_NOT_FOUND")
    assert release(api).status_code == 200
    refused(release(api), 409, "ALREADY_RELEASED")
    until(app, booking, "released")
    body = refused(release(api), 409, "ALREADY_RELEASED")
    assert "already released" in body["message"]


def test_a_rail_that_is_not_set_up_is_503(app, api, accounts, booking):
    with app.app_context():
        merchant = db.session.get(Merchant, accounts["merchant"]["id"])
        escrow.save_payout_rail(merchant, "paystack")
        merchant.paystack_secret_key = None
        db.session.commit()
    refused(release(api), 503, "NOT_CONFIGURED")
    assert row(app, booking).status == "held"


def test_a_payment_due_for_refund_is_not_released(app, api, accounts, booking):
    with app.app_context():
        db.session.get(Escrow, booking).refund_due = True
        db.session.commit()
    refused(release(api), 409, "REFUND_DUE")


def test_concurrent_releases_make_one_payout(app, api, booking):
    start, answers = threading.Barrier(5), []

    def race():
        start.wait()
        answers.append(release(api, amount=500).status_code)

    threads = [threading.Thread(target=race) for _ in range(5)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(answers) == [200, 409, 409, 409, 409]
    until(app, booking, "released")
    with app.app_context():
        assert Payment.query.filter_by(kind="transfer").count() == 1
        assert SandboxPaystackTransfer.query.count() == 1


def test_another_merchants_booking_is_404_and_nothing_changes(app, other_api, booking):
    def state():
        with app.app_context():
            return (
                [(e.id, e.status, e.payout_id, e.attempts) for e in Escrow.query.order_by(Escrow.id)],
                Payment.query.count(),
            )

    before = state()
    refused(release(other_api), 404, "ESCROW_NOT_FOUND")
    assert state() == before


def test_without_a_key_it_is_401(app, live_server):
    import requests

    answer = requests.post(live_server + PATH, json={"bookingId": "b", "teacherPhone": "0712345678", "amount": 1})
    refused(answer, 401, "UNAUTHORIZED")
