"""The Daraja simulator's Transaction Status over real HTTP: acknowledged at once, answered to the
ResultURL; it tells what became of B2C payouts (paid with the Result lost, timed out in the
queue, failed, never made), C2B payments and STK receipts (reference §8.1)."""

import re

import pytest

from portal.models import SandboxB2CPayment, SandboxStkRequest
from portal.sandbox.daraja.b2c import resolve_and_call_back
from tests.conftest import wait_for
from tests.helpers import settled
from tests.sandbox.support import MISSING, assert_envelope, by_key, each

RESULT, TIMEOUT = "/status/result", "/status/timeout"
PAYOUT_RESULT, PAYOUT_TIMEOUT = "/b2c/result", "/b2c/timeout"


@pytest.fixture
def ask(business, receiver):
    """Asks about a transaction and returns the Result the ResultURL then receives."""

    def ask(**overrides) -> dict:
        answer = business.status(receiver.at(RESULT), receiver.at(TIMEOUT), **overrides)
        assert answer.status_code == 200, answer.text
        conversation_id = answer.json()["ConversationID"]

        def answered():
            return [b for b in receiver.bodies_at(RESULT) if b["Result"]["ConversationID"] == conversation_id]

        [body] = wait_for(answered, what=f"the status answer of {conversation_id}")
        return body["Result"]

    return ask


@pytest.fixture
def payout(business, receiver):
    def payout(**overrides) -> dict:
        answer = business.b2c(receiver.at(PAYOUT_RESULT), receiver.at(PAYOUT_TIMEOUT), **overrides)
        assert answer.status_code == 200, answer.text
        return answer.json()

    return payout


def parameters(result: dict) -> dict:
    return {key: item.get("Value") for key, item in by_key(result["ResultParameters"]["ResultParameter"]).items()}


def test_a_query_is_acknowledged_like_daraja(business, receiver):
    answer = business.status(receiver.at(RESULT), receiver.at(TIMEOUT), TransactionID="TCF1AB2CD3")
    assert answer.status_code == 200
    body = answer.json()
    assert list(body) == ["OriginatorConversationID", "ConversationID", "ResponseCode", "ResponseDescription"]
    assert body["ResponseCode"] == "0" and body["ResponseDescription"] == "Accept the service request successfully."
    assert re.fullmatch(r"\d{4,5}-\d{7,8}-\d", body["OriginatorConversationID"])
    assert re.fullmatch(r"AG_\d{8}_[0-9a-f]{20}", body["ConversationID"])


def test_a_payout_whose_result_was_lost_is_reported_completed(app, ask, payout, receiver):
    lost = payout(OriginatorConversationID="payout-9-attempt-1", PartyB="254712349999", Amount=700)
    settled(app)
    assert receiver.bodies_at(PAYOUT_RESULT) == []  # nobody was told

    result = ask(OriginalConversationID="payout-9-attempt-1", Occasion="Reconcile 9")
    assert (result["ResultType"], result["ResultCode"]) == (0, 0)
    assert result["ResultDesc"] == "The service request is processed successfully."
    found = parameters(result)
    assert found["TransactionStatus"] == "Completed"
    assert found["OriginatorConversationID"] == "payout-9-attempt-1"
    assert found["ConversationID"] == lost["ConversationID"]
    assert found["Amount"] == 700
    assert re.fullmatch(r"[A-Z0-9]{10}", found["ReceiptNo"]) and not found["ReceiptNo"].endswith("0000000")
    assert found["CreditPartyName"].startswith("254712349999 - ")
    assert found["DebitPartyName"] == "600984 - Demo Shop"
    assert found["ReasonType"] == "Business Payment to Customer via API"
    assert re.fullmatch(r"\d{14}", str(found["InitiatedTime"])) and re.fullmatch(r"\d{14}", str(found["FinalisedTime"]))
    assert "TransactionReason" in by_key(result["ResultParameters"]["ResultParameter"])
    assert result["ReferenceData"] == {"ReferenceItem": {"Key": "Occasion", "Value": "Reconcile 9"}}

    # by the receipt, too, and by Daraja's ConversationID
    assert parameters(ask(TransactionID=found["ReceiptNo"]))["ConversationID"] == lost["ConversationID"]
    assert parameters(ask(OriginalConversationID=lost["ConversationID"]))["ReceiptNo"] == found["ReceiptNo"]


def test_a_payout_that_timed_out_in_the_queue_went_through(app, ask, payout, receiver):
    payout(OriginatorConversationID="payout-10-attempt-1", PartyB="254712349998")
    receiver.wait_at(PAYOUT_TIMEOUT)
    assert parameters(ask(OriginalConversationID="payout-10-attempt-1"))["TransactionStatus"] == "Completed"


def test_a_failed_payout_is_reported_failed(app, ask, payout, receiver):
    payout(OriginatorConversationID="payout-11-attempt-1", PartyB="254712340001")
    [failed] = receiver.wait_at(PAYOUT_RESULT)
    assert failed["Result"]["ResultCode"] == 1
    found = parameters(ask(OriginalConversationID="payout-11-attempt-1"))
    assert found["TransactionStatus"] == "Failed"
    assert found["ReceiptNo"] == failed["Result"]["TransactionID"]


def test_a_payout_never_made_is_not_found(app, ask, other_business, receiver):
    # the other merchant's payout is not this app's to ask about
    theirs = other_business.b2c(receiver.at(PAYOUT_RESULT), receiver.at(PAYOUT_TIMEOUT), OriginatorConversationID="p-1")
    assert theirs.status_code == 200
    settled(app)
    for asked in (
        {"OriginalConversationID": "p-1"},
        {"OriginalConversationID": "never-sent"},
        {"TransactionID": "TCF1AB2CD3"},
    ):
        result = ask(**asked)
        assert (result["ResultCode"], result["ResultDesc"]) == ("R000002", "The OriginalTransactionID is invalid.")
        assert "ResultParameters" not in result


def test_a_payout_still_queued_is_settled_as_it_is_asked_about(app, ask, payout, receiver):
    app.config["SANDBOX_CALLBACK_DELAY"] = 30  # the payout's own job waits; the query is answered first
    queued = payout(OriginatorConversationID="payout-12-attempt-1")
    app.config["SANDBOX_CALLBACK_DELAY"] = 0.3
    found = parameters(ask(OriginalConversationID="payout-12-attempt-1"))
    assert found["TransactionStatus"] == "Completed" and found["ConversationID"] == queued["ConversationID"]
    assert receiver.bodies_at(PAYOUT_RESULT) == []  # its own Result still comes when its time does
    with app.app_context():  # its job, run now rather than in 30 s: it tells the same story, once
        payout_id = SandboxB2CPayment.query.filter_by(conversation_id=queued["ConversationID"]).one().id
        assert resolve_and_call_back(payout_id) == "1 result(s) queued"
        assert resolve_and_call_back(payout_id) == "no callback"
    [result] = receiver.wait_at(PAYOUT_RESULT)
    assert (result["Result"]["ResultCode"], result["Result"]["TransactionID"]) == (0, found["ReceiptNo"])


def test_c2b_and_stk_receipts_are_found(app, ask, business, sim, receiver):
    business.register(receiver.at("/c2b/confirm"), receiver.at("/c2b/validate"))
    assert business.simulate(Amount=250, Msisdn="254712345678").status_code == 200
    [confirmation] = receiver.wait_at("/c2b/confirm")
    found = parameters(ask(TransactionID=confirmation["TransID"]))
    assert found["TransactionStatus"] == "Completed" and found["Amount"] == 250
    assert found["ReceiptNo"] == confirmation["TransID"] and found["DebitPartyName"].startswith("254712345678 - ")
    assert found["CreditPartyName"] == "600984 - Demo Shop"

    checkout_id = sim.accepted(phone="254712345600", Amount=40)["CheckoutRequestID"]
    receipt = wait_for(lambda: _receipt(app, checkout_id), what="the STK receipt")
    found = parameters(ask(TransactionID=receipt, PartyA="174379"))
    assert (found["TransactionStatus"], found["Amount"], found["ReceiptNo"]) == ("Completed", 40, receipt)
    assert ask(TransactionID=receipt)["ResultCode"] == "R000002"  # another shortcode's receipt


def _receipt(app, checkout_id):
    with app.app_context():
        return SandboxStkRequest.query.filter_by(checkout_request_id=checkout_id).one().receipt


def test_a_bad_credential_is_answered_with_an_invalid_initiator(ask, payout, business, receiver):
    payout(OriginatorConversationID="payout-13-attempt-1")
    for overrides in ({"SecurityCredential": business.credential("wrong")}, {"Initiator": "someone"}):
        result = ask(OriginalConversationID="payout-13-attempt-1", **overrides)
        assert (result["ResultCode"], result["ResultDesc"]) == (2001, "The initiator information is invalid.")
        assert "ResultParameters" not in result


STATUS_REFUSALS = [
    ("Initiator", MISSING),
    ("SecurityCredential", ""),
    ("CommandID", "TransactionStatus"),
    ("CommandID", MISSING),
    ("TransactionID", "x" * 65),
    ("PartyA", "12"),
    ("PartyA", True),
    ("IdentifierType", "5"),
    ("IdentifierType", MISSING),
    ("ResultURL", "nowhere"),
    ("QueueTimeOutURL", MISSING),
    ("Remarks", "r" * 101),
    ("Occasion", "o" * 101),
]


def test_each_bad_field_is_named_in_a_bad_request(business, receiver):
    urls = receiver.at(RESULT), receiver.at(TIMEOUT)
    each(
        STATUS_REFUSALS,
        lambda case: assert_envelope(
            business.status(*urls, **{"TransactionID": "TCF1AB2CD3", case[0]: case[1]}),
            400,
            "400.002.02",
            f"Bad Request - Invalid {case[0]}",
        ),
    )
    # neither a receipt nor a conversation id: nothing to look for
    assert_envelope(business.status(*urls), 400, "400.002.02", "Bad Request - Invalid TransactionID")
    assert_envelope(
        business.status(*urls, TransactionID="TCF1AB2CD3", authorization="Bearer nonsense"),
        400,
        "400.003.01",
        "Invalid Access Token",
    )
    assert_envelope(
        business.status(*urls, TransactionID="TCF1AB2CD3", authorization=None),
        404,
        "404.001.04",
        "Invalid Authentication Header",
    )


def test_hostile_bodies_are_answered_in_darajas_envelope(business):
    for raw in (b"", b"[]", b"\x00", b'{"TransactionID": NaN}', b'{"TransactionID": "\\ud800"}', b"[" * 20_000):
        answer = business.post(
            "/mpesa/transactionstatus/v1/query", data=raw, headers={"Content-Type": "application/json"}
        )
        assert answer.status_code == 400, (raw[:40], answer.text)
        assert answer.json()["errorCode"] in ("400.002.02", "400.002.05")
