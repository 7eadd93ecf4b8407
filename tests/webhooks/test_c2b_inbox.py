"""C2B validation and confirmation through the inbox: a confirmation lands in the ledger once
however often it comes, validation answers by the merchant's rules in Daraja's words, and
nothing that did not come through the merchant's registered URLs is applied."""

import json
from concurrent.futures import ThreadPoolExecutor

import pytest
import requests

from portal.extensions import db
from portal.models import Callback, Merchant, Payment, PaymentEvent
from portal.services.links import callback_token
from portal.services.mpesa import c2b

PATHS = {
    "validation": ("/api/mpesa/callback/c2b/validation", "/hooks/daraja/c2b/validation"),
    "confirmation": ("/api/mpesa/callback/c2b/confirmation", "/hooks/daraja/c2b/confirmation"),
}


def body(trans_id="TCF7Q2LX4M", amount="250.00", bill_ref="INV-2231", shortcode="174379", msisdn="254708374149"):
    return {
        "TransactionType": "Pay Bill",
        "TransID": trans_id,
        "TransTime": "20261124093012",
        "TransAmount": amount,
        "BusinessShortCode": shortcode,
        "BillRefNumber": bill_ref,
        "InvoiceNumber": "",
        "OrgAccountBalance": "48210.00",
        "ThirdPartyTransID": "",
        "MSISDN": msisdn,
        "FirstName": "JANE",
        "MiddleName": "",
        "LastName": "",
    }


def signed(path: str, merchant_id: int) -> str:
    ref = c2b.merchant_ref(merchant_id)
    return f"{path}?ref={ref}&token={callback_token(ref)}"


@pytest.fixture
def merchant_id(accounts):
    return accounts["merchant"]["id"]


@pytest.mark.parametrize("path", PATHS["confirmation"])
def test_a_confirmation_delivered_three_times_makes_one_ledger_row(ctx, client, merchant_id, path):
    for _ in range(3):
        answer = client.post(signed(path, merchant_id), json=body())
        assert answer.status_code == 200 and answer.get_json() == {"ResultCode": 0, "ResultDesc": "Success"}
    rows = Payment.query.filter_by(kind="c2b").all()
    assert len(rows) == 1
    p = rows[0]
    assert (p.merchant_id, p.status, p.amount, p.receipt, p.phone) == (
        merchant_id,
        "completed",
        25000,
        "TCF7Q2LX4M",
        "254708374149",
    )
    assert p.account_reference == "INV-2231" and p.completed_at is not None
    assert [c.outcome for c in Callback.query.order_by(Callback.id)] == ["applied", "duplicate", "duplicate"]
    assert PaymentEvent.query.filter_by(payment_id=p.id).count() == 1


def test_concurrent_copies_over_http_make_one_row(app, live_server, accounts):
    with app.app_context():
        url = live_server + signed(PATHS["confirmation"][1], accounts["merchant"]["id"])
    with ThreadPoolExecutor(6) as pool:
        answers = list(pool.map(lambda _: requests.post(url, json=body(trans_id="TCF7Q2CONC"), timeout=30), range(6)))
    assert {a.status_code for a in answers} == {200}
    with app.app_context():
        assert Payment.query.filter_by(reference="C2BTCF7Q2CONC").count() == 1
        outcomes = sorted(c.outcome for c in Callback.query)
        assert outcomes == ["applied"] + ["duplicate"] * 5


def test_a_masked_msisdn_is_kept_but_not_taken_for_a_phone(ctx, client, merchant_id):
    client.post(signed(PATHS["confirmation"][0], merchant_id), json=body(msisdn="2547 ***** 149"))
    p = Payment.query.filter_by(kind="c2b").one()
    assert p.phone is None and p.meta["msisdn"] == "2547 ***** 149"


def test_a_confirmation_without_a_valid_token_is_stored_and_not_applied(ctx, client, merchant_id):
    for path in (PATHS["confirmation"][0], PATHS["confirmation"][0] + "?ref=M1&token=forged"):
        assert client.post(path, json=body()).get_json() == {"ResultCode": 0, "ResultDesc": "Success"}
    assert Payment.query.filter_by(kind="c2b").count() == 0
    assert [c.outcome for c in Callback.query] == ["rejected", "rejected"]
    assert all("token=forged" not in (c.query_string or "") for c in Callback.query)


@pytest.mark.parametrize(
    "raw",
    [b"", b"\x00\xff\xfe", b'{"TransID": "\\u0000"}', b"[" * 50_000, b'{"TransID": "TCF7Q2LX4M", "TransAmount": NaN}'],
)
def test_hostile_confirmations_are_stored_and_acknowledged(ctx, client, merchant_id, raw):
    answer = client.post(signed(PATHS["confirmation"][0], merchant_id), data=raw, content_type="application/json")
    assert answer.status_code == 200 and answer.get_json()["ResultCode"] == 0
    stored = Callback.query.one()
    assert bytes(stored.raw) == raw and stored.outcome == "invalid"


@pytest.mark.parametrize("amount", ["250.50", "-5.00", "0.00", "Infinity", "1e400", "abc"])
def test_amounts_that_are_not_whole_positive_shillings_are_invalid(ctx, client, merchant_id, amount):
    client.post(signed(PATHS["confirmation"][0], merchant_id), json=body(amount=amount))
    assert Callback.query.one().outcome == "invalid"
    assert Payment.query.count() == 0


@pytest.mark.parametrize("path", PATHS["validation"])
def test_validation_accepts_by_default(ctx, client, merchant_id, path):
    answer = client.post(signed(path, merchant_id), json=body(amount="250.00"))
    assert answer.get_json() == {"ResultCode": "0", "ResultDesc": "Accepted"}
    assert Payment.query.count() == 0  # only the confirmation records money
    assert Callback.query.one().outcome == "applied"


def test_validation_refuses_accounts_the_merchant_does_not_keep(ctx, client, merchant_id):
    merchant = db.session.get(Merchant, merchant_id)
    merchant.settings = {**(merchant.settings or {}), "c2b": {"accounts": ["INV-2231", "inv-9"]}}
    db.session.commit()
    path = signed(PATHS["validation"][0], merchant_id)
    assert client.post(path, json=body(bill_ref="inv-2231")).get_json()["ResultCode"] == "0"
    refused = client.post(path, json=body(bill_ref="INV-0000")).get_json()
    assert refused == {"ResultCode": "C2B00012", "ResultDesc": "Rejected"}


def test_validation_refuses_another_shortcode_and_unreadable_or_unsigned_requests(ctx, client, merchant_id):
    path = signed(PATHS["validation"][0], merchant_id)
    assert client.post(path, json=body(shortcode="600984")).get_json()["ResultCode"] == "C2B00015"
    assert client.post(path, data=b"\xff", content_type="application/json").get_json()["ResultCode"] == "C2B00016"
    unsigned = client.post(PATHS["validation"][0], json=body()).get_json()
    assert unsigned == {"ResultCode": "C2B00016", "ResultDesc": "Rejected"}


def test_stored_c2b_bodies_are_kept_byte_for_byte(ctx, client, merchant_id):
    raw = json.dumps(body()).encode()
    client.post(signed(PATHS["confirmation"][0], merchant_id), data=raw, content_type="application/json")
    assert bytes(Callback.query.one().raw) == raw
