"""The Daraja simulator's C2B over real HTTP: URL registration (v1, v2), simulated payments, the
validation and confirmation requests they make to the registered URLs, and every refusal in
Daraja's envelope (shared/reference/daraja.md §6)."""

import hashlib
import json
import re
from datetime import datetime, timedelta

import pytest
import requests

from portal.extensions import db
from portal.models import SandboxC2BPayment, SandboxDelivery
from portal.timeutil import EAT
from tests.helpers import settled
from tests.sandbox.support import C2B_SHORTCODE, MISSING, PHONE, assert_envelope, each, free_port_url

VALIDATE, CONFIRM = "/c2b/validate", "/c2b/confirm"
ACCEPT_ANSWER = "Accept the service request successfully."
OPENING = "1000000.00"  # SANDBOX_SHORTCODE_BALANCE


@pytest.fixture
def urls(receiver):
    return receiver.at(CONFIRM), receiver.at(VALIDATE)


def registered(business, urls, version="v2", **overrides):
    answer = business.register(*urls, version=version, **overrides)
    assert answer.status_code == 200, answer.text
    return answer.json()


def paid(business, **overrides) -> dict:
    answer = business.simulate(**overrides)
    assert answer.status_code == 200, answer.text
    return answer.json()


def payment(app, **filters) -> SandboxC2BPayment:
    with app.app_context():
        row = SandboxC2BPayment.query.filter_by(**filters).one()
        db.session.expunge(row)
        return row


# -- registering URLs --------------------------------------------------------------------------
@pytest.mark.parametrize("version", ["v1", "v2"])
def test_registration_is_acknowledged_with_darajas_misspelled_key(business, urls, version):
    body = registered(business, urls, version)
    assert list(body) == ["OriginatorCoversationID", "ResponseCode", "ResponseDescription"]
    assert body["ResponseCode"] == "0" and body["ResponseDescription"] == "Success"
    assert re.fullmatch(r"[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}\d{4,7}", body["OriginatorCoversationID"])


def test_registering_again_replaces_the_urls_as_in_the_sandbox(app, business, receiver, urls):
    registered(business, urls)
    registered(business, (receiver.at("/c2b/confirm-2"), receiver.at("/c2b/validate-2")), ResponseType="Cancelled")
    paid(business)
    receiver.wait_at("/c2b/confirm-2")
    settled(app)
    assert receiver.bodies_at(VALIDATE) == [] and receiver.bodies_at(CONFIRM) == []
    assert len(receiver.bodies_at("/c2b/validate-2")) == 1


REGISTER_REFUSALS = [
    ("ShortCode", "abc"),
    ("ShortCode", "1234"),
    ("ShortCode", MISSING),
    ("ResponseType", "completed"),  # sentence case, exactly
    ("ResponseType", "COMPLETED"),
    ("ResponseType", "Complete"),
    ("ResponseType", ""),
    ("ResponseType", MISSING),
    ("ConfirmationURL", "https://shop.example.org/mpesa/confirm"),
    ("ConfirmationURL", "https://shop.example.org/M-PESA/confirm"),
    ("ConfirmationURL", "https://safaricom-hooks.example.org/confirm"),
    ("ConfirmationURL", "https://shop.example.org/exec/confirm"),
    ("ConfirmationURL", "https://shop.example.org/cmd?x=1"),
    ("ConfirmationURL", "https://shop.example.org/confirm?q=SQL"),
    ("ConfirmationURL", "https://shop.example.org/query/confirm"),
    ("ConfirmationURL", "https://a1b2.ngrok.io/confirm"),
    ("ConfirmationURL", "https://mockbin.org/bin/1"),
    ("ConfirmationURL", "https://shop.example.org/con firm"),
    ("ConfirmationURL", "ftp://shop.example.org/confirm"),
    ("ConfirmationURL", MISSING),
    ("ValidationURL", "https://shop.example.org/MPesa/validate"),
    ("ValidationURL", "shop.example.org/validate"),
    ("ValidationURL", 42),
    ("ValidationURL", MISSING),
]


def test_each_bad_registration_field_is_named_in_a_bad_request(business, urls):
    each(
        REGISTER_REFUSALS,
        lambda case: assert_envelope(
            business.register(*urls, **{case[0]: case[1]}), 400, "400.002.02", f"Bad Request - Invalid {case[0]}"
        ),
    )


def test_c2b_refuses_a_missing_or_bad_token_the_way_daraja_does(business, urls):
    body = business.register_body(*urls)
    path = "/mpesa/c2b/v2/registerurl"
    for authorization in (None, "", "Basic abc", "Token x"):
        answer = business.post(path, body, authorization=authorization)
        assert_envelope(answer, 404, "404.001.04", "Invalid Authentication Header")
    for authorization in ("Bearer ", "Bearer nonsense"):
        assert_envelope(
            business.post(path, body, authorization=authorization), 400, "400.003.01", "Invalid Access Token"
        )
    assert_envelope(
        business.post("/mpesa/c2b/v1/simulate", business.simulate_body(), authorization="Bearer nonsense"),
        400,
        "400.003.01",
        "Invalid Access Token",
    )


# -- a payment: validation, then confirmation ------------------------------------------------------
def test_a_payment_is_validated_then_confirmed_in_darajas_shapes(app, business, receiver, urls):
    registered(business, urls)
    receiver.answers[VALIDATE] = (
        200,
        json.dumps({"ResultCode": "0", "ResultDesc": "Accepted", "ThirdPartyTransID": "ord-42"}),
    )
    ack = paid(business, Amount=250, Msisdn=PHONE, BillRefNumber="INV-2231")
    assert list(ack) == ["OriginatorCoversationID", "ResponseCode", "ResponseDescription"]
    assert ack["ResponseCode"] == "0" and ack["ResponseDescription"] == ACCEPT_ANSWER

    [confirmation] = receiver.wait_at(CONFIRM)
    [validation] = receiver.bodies_at(VALIDATE)
    keys = [
        "TransactionType",
        "TransID",
        "TransTime",
        "TransAmount",
        "BusinessShortCode",
        "BillRefNumber",
        "InvoiceNumber",
        "OrgAccountBalance",
        "ThirdPartyTransID",
        "MSISDN",
        "FirstName",
        "MiddleName",
        "LastName",
    ]
    for body in (validation, confirmation):
        assert list(body) == keys
        assert all(isinstance(value, str) for value in body.values()), body
        assert body["TransactionType"] == "Pay Bill"
        assert body["TransAmount"] == "250.00"
        assert body["BusinessShortCode"] == C2B_SHORTCODE
        assert body["BillRefNumber"] == "INV-2231"
        assert body["MSISDN"] == "2547 ***** 149"  # v2: masked
        assert body["FirstName"] and body["MiddleName"] == "" and body["LastName"] == ""
        paid_at = datetime.strptime(body["TransTime"], "%Y%m%d%H%M%S").replace(tzinfo=EAT)
        assert abs(paid_at - datetime.now(EAT)) < timedelta(minutes=1)  # East Africa Time
    assert re.fullmatch(r"[A-Z0-9]{10}", confirmation["TransID"]) and confirmation["TransID"] == validation["TransID"]
    assert validation["OrgAccountBalance"] == "" and validation["ThirdPartyTransID"] == ""
    assert confirmation["OrgAccountBalance"] == "1000250.00"  # the shortcode's account, credited
    assert confirmation["ThirdPartyTransID"] == "ord-42"  # the validation answer's id, echoed
    assert payment(app, trans_id=confirmation["TransID"]).status == "completed"

    paid(business, Amount=100)
    assert receiver.wait_at(CONFIRM, 2)[1]["OrgAccountBalance"] == "1000350.00"


def test_v1_registered_urls_get_the_msisdn_as_a_sha256_hash(business, receiver, urls):
    registered(business, urls, "v1")
    paid(business, Msisdn="254712345678")
    [confirmation] = receiver.wait_at(CONFIRM)
    assert confirmation["MSISDN"] == hashlib.sha256(b"254712345678").hexdigest()
    assert receiver.bodies_at(VALIDATE)[0]["MSISDN"] == confirmation["MSISDN"]


def test_buy_goods_needs_no_account_number(business, receiver, urls):
    registered(business, urls)
    paid(business, CommandID="CustomerBuyGoodsOnline", BillRefNumber=MISSING)
    paid(business, CommandID="CustomerBuyGoodsOnline", BillRefNumber=None)
    confirmations = receiver.wait_at(CONFIRM, 2)
    assert [(c["TransactionType"], c["BillRefNumber"]) for c in confirmations] == [("Buy Goods", "")] * 2
    assert len({c["TransID"] for c in confirmations}) == 2


def test_a_rejected_payment_is_never_confirmed_nor_credited(app, business, receiver, urls):
    registered(business, urls)
    receiver.answers[VALIDATE] = (200, '{"ResultCode": "C2B00012", "ResultDesc": "Rejected"}')
    paid(business, BillRefNumber="NO-SUCH-ACC")
    [validation] = receiver.wait_at(VALIDATE)
    settled(app)
    assert receiver.bodies_at(CONFIRM) == []
    row = payment(app, trans_id=validation["TransID"])
    assert row.status == "rejected" and "C2B00012" in row.detail and row.balance_after_cents is None

    receiver.answers.pop(VALIDATE)  # the next one is accepted: the account never saw the rejected one
    paid(business)
    assert receiver.wait_at(CONFIRM)[0]["OrgAccountBalance"] == "1000250.00"


@pytest.mark.parametrize(
    "response_type, confirmed",
    [("Completed", True), ("Cancelled", False)],
)
def test_without_a_validation_answer_the_response_type_decides(app, business, receiver, response_type, confirmed):
    app.config["SANDBOX_C2B_VALIDATION_TIMEOUT"] = 0.5
    receiver.delays["/slow/validate"] = 2.0  # answers after Daraja stopped waiting
    receiver.answers["/failing/validate"] = (500, "<html>oops</html>")
    validations = {
        "unreachable": free_port_url(),
        "too slow": receiver.at("/slow/validate"),
        "HTTP 500": receiver.at("/failing/validate"),
        "not JSON": receiver.at("/garbled/validate"),
    }
    receiver.answers["/garbled/validate"] = (200, "OK")
    for name, validation_url in validations.items():
        registered(business, (receiver.at(CONFIRM), validation_url), ResponseType=response_type)
        paid(business, BillRefNumber=name.replace(" ", "-"))
        settled(app)
    refs = sorted(c["BillRefNumber"] for c in receiver.bodies_at(CONFIRM))
    expected = sorted(name.replace(" ", "-") for name in validations) if confirmed else []
    assert refs == expected
    with app.app_context():
        statuses = {p.bill_ref: (p.status, p.detail) for p in SandboxC2BPayment.query}
    for name in validations:
        status, detail = statuses[name.replace(" ", "-")]
        assert status == ("completed" if confirmed else "cancelled")
        assert f"ResponseType {response_type}" in detail


def test_a_payment_with_no_urls_registered_completes_silently(app, business, receiver):
    paid(business, ShortCode="600997")
    settled(app)
    assert receiver.received == []
    with app.app_context():
        [row] = SandboxC2BPayment.query.all()
        assert (row.status, row.balance_after_cents) == ("completed", 100_025_000)
        assert SandboxDelivery.query.count() == 0


def test_registrations_are_per_app_so_merchants_never_see_each_others_payments(
    app, business, other_business, receiver, urls
):
    registered(business, urls)
    registered(other_business, (receiver.at("/other/confirm"), receiver.at("/other/validate")))
    paid(other_business, BillRefNumber="OTHER")
    paid(business, BillRefNumber="MINE")
    receiver.wait_at(CONFIRM)
    receiver.wait_at("/other/confirm")
    settled(app)
    assert [b["BillRefNumber"] for b in receiver.bodies_at(CONFIRM)] == ["MINE"]
    assert [b["BillRefNumber"] for b in receiver.bodies_at("/other/confirm")] == ["OTHER"]


def test_duplicated_confirmations_carry_the_same_transid_and_one_validation(app, business, receiver, urls):
    app.config["SANDBOX_CALLBACK_COPIES"] = 3
    registered(business, urls)
    paid(business)
    confirmations = receiver.wait_at(CONFIRM, 3)
    settled(app)
    assert len(receiver.bodies_at(VALIDATE)) == 1  # one answer decides
    assert len(receiver.bodies_at(CONFIRM)) == 3 and len({json.dumps(c) for c in confirmations}) == 1
    assert confirmations[0]["OrgAccountBalance"] == "1000250.00"  # credited once


SIMULATE_REFUSALS = [
    ("ShortCode", "6009"),
    ("ShortCode", MISSING),
    ("CommandID", "CustomerPayBill"),
    ("CommandID", "customerpaybillonline"),
    ("CommandID", MISSING),
    ("Amount", 0),
    ("Amount", 1.5),
    ("Amount", 250_001),
    ("Amount", "abc"),
    ("Amount", True),
    ("Amount", MISSING),
    ("Msisdn", "0708374149"),
    ("Msisdn", "+254708374149"),
    ("Msisdn", 25470837414),
    ("Msisdn", MISSING),
    ("BillRefNumber", ""),
    ("BillRefNumber", "A" * 21),
    ("BillRefNumber", "INV\x002231"),
    ("BillRefNumber", MISSING),  # a paybill needs the account the customer typed
]


def test_each_bad_simulation_field_is_named_and_nothing_is_paid(app, business):
    each(
        SIMULATE_REFUSALS,
        lambda case: assert_envelope(
            business.simulate(**{case[0]: case[1]}), 400, "400.002.02", f"Bad Request - Invalid {case[0]}"
        ),
    )
    assert paid(business, Msisdn=254708374149, ShortCode=int(C2B_SHORTCODE), Amount="10")["ResponseCode"] == "0"
    with app.app_context():
        assert SandboxC2BPayment.query.count() == 1


def test_transids_are_unique(app, business):
    ids = {paid(business, Amount=n)["OriginatorCoversationID"] for n in range(1, 21)}
    assert len(ids) == 20
    with app.app_context():
        trans_ids = [p.trans_id for p in SandboxC2BPayment.query]
    assert len(set(trans_ids)) == 20 and all(re.fullmatch(r"[A-Z0-9]{10}", t) for t in trans_ids)


HOSTILE = [
    b"",
    b"null",
    b"[]",
    b'"text"',
    b"\xff\xfe\x00{",
    b'{"ShortCode": NaN, "Amount": Infinity}',
    b'{"ShortCode": "600984", "Amount": 1e309, "Msisdn": "254708374149", "CommandID": "CustomerPayBillOnline"}',
    b'{"ShortCode": {"a": 1}, "ResponseType": ["Completed"]}',
    b'{"ShortCode": "600984", "ResponseType": "Completed", "ConfirmationURL": "http://x/\\u0000",'
    b' "ValidationURL": "http://x/\\ud800"}',
    b'{"ShortCode": "600984", "CommandID": "CustomerPayBillOnline", "Amount": 1, "Msisdn": "254708374149",'
    b' "BillRefNumber": "\\ud800"}',
    b"[" * 20_000 + b"]" * 20_000,
]


@pytest.mark.parametrize("path", ["/mpesa/c2b/v1/registerurl", "/mpesa/c2b/v2/simulate"])
def test_hostile_bodies_are_answered_in_darajas_envelope(business, path):
    for raw in HOSTILE:
        answer = business.post(path, data=raw, headers={"Content-Type": "application/json"})
        assert answer.status_code == 400, (raw[:60], answer.status_code, answer.text)
        assert answer.json()["errorCode"] in ("400.002.02", "400.002.05"), raw[:60]
    assert_envelope(business.post(path, data=b'{"a":' * 3000), 400, "400.002.05", "Invalid Request Payload")
    answer = requests.get(business.base + path, headers={"Authorization": f"Bearer {business.token()}"}, timeout=10)
    assert_envelope(answer, 405, "405.001", "GET Method Not Allowed")
