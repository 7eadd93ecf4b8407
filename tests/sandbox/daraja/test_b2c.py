"""The Daraja simulator's B2C over real HTTP: the acknowledgement (v1, v3), the initiator's
RSA-encrypted credential, each outcome of the table with the Result (or timeout, or nothing) it
sends, the shortcode's balance, and every refusal in Daraja's envelope (reference §7)."""

import base64
import re
from datetime import datetime, timedelta

import pytest
import requests

from portal.extensions import db
from portal.models import SandboxB2CPayment
from portal.timeutil import EAT
from tests.conftest import wait_for
from tests.helpers import settled
from tests.sandbox.support import C2B_SHORTCODE, MISSING, assert_envelope, by_key, each

RESULT, TIMEOUT = "/b2c/result", "/b2c/timeout"
PROCESSED = "The service request is processed successfully."
BAD_INITIATOR = "The initiator information is invalid."


@pytest.fixture
def send(business, receiver):
    """Sends a B2C request with the receiver's result and timeout URLs; the answer's JSON."""

    def send(version="v3", **overrides) -> dict:
        answer = business.b2c(receiver.at(RESULT), receiver.at(TIMEOUT), version=version, **overrides)
        assert answer.status_code == 200, answer.text
        return answer.json()

    return send


def results_for(receiver, conversation_id: str, path: str = RESULT) -> list[dict]:
    return [b for b in receiver.bodies_at(path) if b["Result"]["ConversationID"] == conversation_id]


def one_result(receiver, ack: dict, path: str = RESULT) -> dict:
    """The one callback of the payout `ack` acknowledged, once it has come to `path`."""
    conversation_id = ack["ConversationID"]
    [body] = wait_for(lambda: results_for(receiver, conversation_id, path), what=f"the callback of {conversation_id}")
    return body["Result"]


def test_a_payout_is_acknowledged_then_paid_with_darajas_result(app, send, receiver):
    ack = send(OriginatorConversationID="payout-000482", Amount=500, PartyB="254712345678")
    assert list(ack) == ["ConversationID", "OriginatorConversationID", "ResponseCode", "ResponseDescription"]
    assert ack["OriginatorConversationID"] == "payout-000482"
    assert ack["ResponseCode"] == "0" and ack["ResponseDescription"] == "Accept the service request successfully."
    assert re.fullmatch(r"AG_\d{8}_[0-9a-f]{20}", ack["ConversationID"])

    result = one_result(receiver, ack)
    assert list(result) == [
        "ResultType",
        "ResultCode",
        "ResultDesc",
        "OriginatorConversationID",
        "ConversationID",
        "TransactionID",
        "ResultParameters",
        "ReferenceData",
    ]
    assert (result["ResultType"], result["ResultCode"], result["ResultDesc"]) == (0, 0, PROCESSED)
    assert result["OriginatorConversationID"] == "payout-000482"
    assert re.fullmatch(r"[A-Z0-9]{10}", result["TransactionID"])
    params = {k: v["Value"] for k, v in by_key(result["ResultParameters"]["ResultParameter"]).items()}
    assert params["TransactionAmount"] == 500
    assert params["TransactionReceipt"] == result["TransactionID"]
    assert re.fullmatch(r"254712345678 - [A-Z]+ [A-Z]+", params["ReceiverPartyPublicName"])
    completed = datetime.strptime(params["TransactionCompletedDateTime"], "%d.%m.%Y %H:%M:%S").replace(tzinfo=EAT)
    assert abs(completed - datetime.now(EAT)) < timedelta(minutes=1)
    assert params["B2CUtilityAccountAvailableFunds"] == 1_000_000 - 500  # the shortcode's account, debited
    assert params["B2CRecipientIsRegisteredCustomer"] == "Y"
    assert {"B2CWorkingAccountAvailableFunds", "B2CChargesPaidAccountAvailableFunds"} <= set(params)
    assert result["ReferenceData"]["ReferenceItem"]["Key"] == "QueueTimeoutURL"
    assert receiver.bodies_at(TIMEOUT) == []

    second = one_result(receiver, send(Amount=1500))
    funds = by_key(second["ResultParameters"]["ResultParameter"])["B2CUtilityAccountAvailableFunds"]["Value"]
    assert funds == 1_000_000 - 500 - 1500


def test_each_outcome_of_the_table(app, send, receiver):
    """0001: insufficient balance; 9998: a queue timeout; 9999: paid, the Result lost; under KES 10: code 2."""
    insufficient = send(PartyB="254712340001")
    below_minimum = send(Amount=9)
    timed_out = send(PartyB="254712349998")
    lost = send(PartyB="254712349999")
    paid = send(PartyB="254712345678", Amount=10)

    for ack, code, desc in (
        (insufficient, 1, "The balance is insufficient for the transaction."),
        (below_minimum, 2, "Declined due to limit rule: less than the minimum transaction amount."),
    ):
        result = one_result(receiver, ack)
        assert (result["ResultCode"], result["ResultDesc"]) == (code, desc)
        assert "ResultParameters" not in result  # only on success
        assert re.fullmatch(r"[A-Z0-9]{3}0000000", result["TransactionID"])  # a placeholder receipt

    timeout = one_result(receiver, timed_out, TIMEOUT)
    assert timeout["OriginatorConversationID"] == timed_out["OriginatorConversationID"]
    assert timeout["ResultCode"] != 0 and "ResultParameters" not in timeout
    assert one_result(receiver, paid)["ResultCode"] == 0
    settled(app)
    assert results_for(receiver, timed_out["ConversationID"]) == []  # no Result, only the timeout
    assert results_for(receiver, lost["ConversationID"]) == []
    assert results_for(receiver, lost["ConversationID"], TIMEOUT) == []
    with app.app_context():
        outcomes = {p.conversation_id: (p.result_code, p.transaction_id) for p in SandboxB2CPayment.query}
    # the lost and the timed-out payouts went through all the same: Transaction Status will say so
    for ack in (lost, timed_out):
        code, receipt = outcomes[ack["ConversationID"]]
        assert code == "0" and re.fullmatch(r"[A-Z0-9]{10}", receipt) and not receipt.endswith("0000000")


def test_a_payout_larger_than_the_account_fails_with_code_1_and_takes_nothing(app, send, receiver):
    app.config["SANDBOX_SHORTCODE_BALANCE"] = 1000
    first = one_result(receiver, send(Amount=800))
    funds = by_key(first["ResultParameters"]["ResultParameter"])["B2CUtilityAccountAvailableFunds"]["Value"]
    assert funds == 200
    refused = one_result(receiver, send(Amount=201))
    assert refused["ResultCode"] == 1 and "ResultParameters" not in refused
    last = one_result(receiver, send(Amount=200))
    assert by_key(last["ResultParameters"]["ResultParameter"])["B2CUtilityAccountAvailableFunds"]["Value"] == 0


def test_a_credential_that_is_not_the_initiators_password_is_an_invalid_initiator(
    app, business, other_business, send, receiver
):
    stranger = other_business.credential()  # the other merchant's password, to the same certificate
    cases = {
        "wrong password": business.credential("Safaricom999!*!"),
        "another app's password": stranger,
        "plain password": business.password,
        "not base64": "not base64 at all!",
        "random bytes": base64.b64encode(b"\x01" * 256).decode(),
        "wrong initiator name": None,
    }
    acks = {}
    for name, credential in cases.items():
        overrides = {"InitiatorName": "apitest"} if credential is None else {"SecurityCredential": credential}
        acks[name] = send(**overrides)  # acknowledged: Daraja finds out later
    for name, ack in acks.items():
        result = one_result(receiver, ack)
        assert (result["ResultCode"], result["ResultDesc"]) == (2001, BAD_INITIATOR), name
        assert "ResultParameters" not in result
    assert one_result(receiver, send())["ResultCode"] == 0  # the right one still works
    with app.app_context():
        assert {p.result_code for p in SandboxB2CPayment.query} == {"2001", "0"}
    # nothing was taken for the refused ones
    assert (
        by_key(receiver.bodies_at(RESULT)[-1]["Result"]["ResultParameters"]["ResultParameter"])[
            "B2CUtilityAccountAvailableFunds"
        ]["Value"]
        == 1_000_000 - 500
    )


def test_each_credential_is_different_and_each_is_accepted(business, send, receiver):
    credentials = {business.credential() for _ in range(3)}
    assert len(credentials) == 3  # PKCS#1 v1.5 pads at random
    acks = [send(SecurityCredential=credential) for credential in credentials]
    assert [one_result(receiver, ack)["ResultCode"] for ack in acks] == [0, 0, 0]


def test_v3_refuses_a_reused_originator_conversation_id(app, send, business, other_business, receiver):
    send(OriginatorConversationID="payout-7-attempt-1")
    answer = business.b2c(receiver.at(RESULT), receiver.at(TIMEOUT), OriginatorConversationID="payout-7-attempt-1")
    assert_envelope(answer, 500, "500.002.1001", "Duplicate OriginatorConversationID.")
    # another app's ids are its own
    theirs = other_business.b2c(
        receiver.at(RESULT), receiver.at(TIMEOUT), OriginatorConversationID="payout-7-attempt-1"
    )
    assert theirs.status_code == 200, theirs.text
    assert send(OriginatorConversationID="payout-7-attempt-2")["OriginatorConversationID"] == "payout-7-attempt-2"
    settled(app)
    with app.app_context():
        assert SandboxB2CPayment.query.count() == 3


def test_v1_makes_its_own_originator_conversation_id(send, receiver):
    ack = send("v1", OriginatorConversationID=MISSING)
    assert re.fullmatch(r"\d{4,5}-\d{7,8}-\d", ack["OriginatorConversationID"])
    assert one_result(receiver, ack)["OriginatorConversationID"] == ack["OriginatorConversationID"]
    again = send("v1", OriginatorConversationID="ignored-on-v1")
    assert again["OriginatorConversationID"] != "ignored-on-v1"


B2C_REFUSALS = [
    ("OriginatorConversationID", MISSING),
    ("OriginatorConversationID", ""),
    ("OriginatorConversationID", "x" * 65),
    ("InitiatorName", MISSING),
    ("InitiatorName", ""),
    ("SecurityCredential", MISSING),
    ("SecurityCredential", 12345),
    ("CommandID", "BusinessPay"),
    ("CommandID", MISSING),
    ("Amount", 0),
    ("Amount", 250_001),
    ("Amount", 10.5),
    ("Amount", "ten"),
    ("PartyA", "12"),
    ("PartyA", MISSING),
    ("PartyB", "0712345678"),
    ("PartyB", "+254712345678"),
    ("PartyB", MISSING),
    ("Remarks", "x"),  # 2 to 100 characters
    ("Remarks", "x" * 101),
    ("Remarks", "line\nbreak"),
    ("Remarks", MISSING),
    ("QueueTimeOutURL", "not a url"),
    ("QueueTimeOutURL", MISSING),
    ("ResultURL", "https://shop.example.org/b2c result"),
    ("ResultURL", MISSING),
    ("Occassion", "o" * 101),
]


def test_each_bad_field_is_named_in_a_bad_request_and_nothing_is_paid(app, business, receiver):
    each(
        B2C_REFUSALS,
        lambda case: assert_envelope(
            business.b2c(receiver.at(RESULT), receiver.at(TIMEOUT), **{case[0]: case[1]}),
            400,
            "400.002.02",
            f"Bad Request - Invalid {case[0]}",
        ),
    )
    assert_envelope(
        business.b2c(receiver.at(RESULT), receiver.at(TIMEOUT), Occassion=MISSING, Occasion="o" * 101),
        400,
        "400.002.02",
        "Bad Request - Invalid Occasion",
    )
    with app.app_context():
        assert SandboxB2CPayment.query.count() == 0


def test_b2c_refuses_a_bad_token_the_way_daraja_does(business, receiver):
    body = business.b2c_body(receiver.at(RESULT), receiver.at(TIMEOUT))
    for authorization, token in ((None, ""), ("Bearer nonsense", "nonsense"), ("Basic abc", "")):
        answer = business.post("/mpesa/b2c/v3/paymentrequest", body, authorization=authorization)
        assert_envelope(answer, 401, "401.002.01", f"Error Occurred - Invalid Access Token - {token}")


HOSTILE = [
    b"",
    b"null",
    b"[1, 2]",
    b"\xff\xfe\x00{",
    b'{"Amount": NaN, "PartyB": Infinity}',
    b'{"Amount": 1e309}',
    b'{"OriginatorConversationID": "\\u0000", "InitiatorName": "testapi"}',
    b'{"OriginatorConversationID": "\\ud800", "InitiatorName": "testapi"}',
    b'{"OriginatorConversationID": {"$ne": 1}}',
    b"[" * 20_000 + b"]" * 20_000,
]


@pytest.mark.parametrize("version", ["v1", "v3"])
def test_hostile_bodies_are_answered_in_darajas_envelope(business, version):
    path = f"/mpesa/b2c/{version}/paymentrequest"
    for raw in HOSTILE:
        answer = business.post(path, data=raw, headers={"Content-Type": "application/json"})
        assert answer.status_code == 400, (raw[:60], answer.status_code, answer.text)
        assert answer.json()["errorCode"] in ("400.002.02", "400.002.05"), raw[:60]
    answer = requests.get(business.base + path, headers={"Authorization": f"Bearer {business.token()}"}, timeout=10)
    assert_envelope(answer, 405, "405.001", "GET Method Not Allowed")


def test_the_payer_is_the_shortcode_sent(app, send, receiver):
    one_result(receiver, send(PartyA="600997", Amount=300))
    one_result(receiver, send(PartyA=int(C2B_SHORTCODE), Amount=100))
    with app.app_context():
        balances = {p.party_a: p.balance_after_cents for p in db.session.query(SandboxB2CPayment)}
    assert balances == {"600997": 99_970_000, C2B_SHORTCODE: 99_990_000}  # each account pays its own
