"""The real Daraja client's C2B, B2C and Transaction Status calls over real HTTP against the
simulator on the live server: typed acknowledgements, typed errors, the initiator's credential,
and the asynchronous Results read back with parse_result."""

import pytest

from portal.extensions import db
from portal.models import Merchant, SandboxToken
from portal.providers.daraja import AsyncAck, C2BAck, DarajaError, NoInitiator, security_credential
from portal.providers.daraja_results import DarajaResult, parse_result, read_certificate
from portal.services.errors import NotConfigured
from portal.services.mpesa.client import daraja_for, daraja_initiator_for, describe_certificate
from tests.conftest import wait_for
from tests.sandbox.support import Receiver

RESULT, TIMEOUT = "/b2c/result", "/b2c/timeout"


@pytest.fixture
def receiver():
    receiver = Receiver()
    receiver.thread.start()
    yield receiver
    receiver.server.shutdown()


@pytest.fixture
def payout_urls(receiver) -> tuple[str, str]:
    return receiver.at(RESULT), receiver.at(TIMEOUT)


@pytest.fixture
def client(app, accounts, live_server):
    with app.app_context():
        return daraja_initiator_for(db.session.get(Merchant, accounts["merchant"]["id"]))


def result_of(receiver, ack: AsyncAck, path: str = RESULT) -> DarajaResult:
    def arrived():
        found = [parse_result(b) for b in receiver.bodies_at(path)]
        return [r for r in found if r.conversation_id == ack.conversation_id]

    [result] = wait_for(arrived, what=f"the Result of {ack.conversation_id}")
    return result


def test_c2b_urls_are_registered_and_a_simulated_payment_is_confirmed(client, receiver):
    registered = client.register_c2b_urls(receiver.at("/c2b/confirm"), receiver.at("/c2b/validate"))
    assert isinstance(registered, C2BAck)
    assert (registered.response_code, registered.response_description) == ("0", "Success")
    assert registered.originator_conversation_id

    simulated = client.simulate_c2b("254708374149", 75, bill_ref="ACC-1")
    assert simulated.response_description == "Accept the service request successfully."
    [confirmation] = receiver.wait_at("/c2b/confirm")
    assert (confirmation["TransAmount"], confirmation["BillRefNumber"]) == ("75.00", "ACC-1")
    assert confirmation["BusinessShortCode"] == client.shortcode

    buy_goods = client.simulate_c2b("254708374149", 5, command_id="CustomerBuyGoodsOnline")
    assert buy_goods.response_code == "0"
    assert receiver.wait_at("/c2b/confirm", 2)[1]["TransactionType"] == "Buy Goods"


def test_c2b_refusals_are_typed_errors(client, receiver):
    with pytest.raises(DarajaError) as refused:
        client.register_c2b_urls(receiver.at("/mpesa/confirm"), receiver.at("/c2b/validate"))
    assert (refused.value.status, refused.value.error_code) == (400, "400.002.02")
    assert refused.value.error_message == "Bad Request - Invalid ConfirmationURL"
    with pytest.raises(DarajaError) as refused:
        client.register_c2b_urls(receiver.at("/c"), receiver.at("/v"), response_type="completed")
    assert refused.value.error_message == "Bad Request - Invalid ResponseType"
    with pytest.raises(DarajaError) as refused:
        client.simulate_c2b("0708374149", 10, bill_ref="ACC-1")
    assert refused.value.error_message == "Bad Request - Invalid Msisdn"


def test_a_b2c_payment_is_acknowledged_and_its_result_parsed(client, receiver, payout_urls):
    ack = client.b2c_payment("payout-1-attempt-1", "254712345678", 500, "Refund", *payout_urls)
    assert isinstance(ack, AsyncAck)
    assert ack.originator_conversation_id == "payout-1-attempt-1" and ack.response_code == "0"
    assert ack.conversation_id.startswith("AG_")

    result = result_of(receiver, ack)
    assert result.ok and result.result_type == "0" and result.result_code == "0"
    assert result.originator_conversation_id == "payout-1-attempt-1"
    assert result.parameters["TransactionReceipt"] == result.transaction_id
    assert result.parameters["TransactionAmount"] == 500
    assert result.reference["QueueTimeoutURL"].startswith("https://")

    with pytest.raises(DarajaError) as refused:  # the same attempt id again
        client.b2c_payment("payout-1-attempt-1", "254712345678", 500, "Refund", *payout_urls)
    assert (refused.value.status, refused.value.error_code) == (500, "500.002.1001")
    assert refused.value.error_message == "Duplicate OriginatorConversationID."
    assert not refused.value.retryable


def test_b2c_on_v1_and_its_failures(client, receiver, payout_urls):
    legacy = client.b2c_payment("ignored", "254712345678", 50, "Pay", *payout_urls, version="v1")
    assert legacy.originator_conversation_id != "ignored"
    assert result_of(receiver, legacy).ok
    poor = client.b2c_payment("payout-2-attempt-1", "254712340001", 50, "Pay", *payout_urls)
    failed = result_of(receiver, poor)
    assert not failed.ok and failed.result_code == "1" and failed.parameters == {}
    with pytest.raises(DarajaError) as refused:
        client.b2c_payment("payout-3-attempt-1", "254712345678", 0, "Pay", *payout_urls)
    assert refused.value.error_message == "Bad Request - Invalid Amount"


def test_transaction_status_settles_a_payout_whose_result_was_lost(app, client, receiver, payout_urls):
    lost = client.b2c_payment("payout-4-attempt-1", "254712349999", 300, "Pay", *payout_urls)
    asked = client.transaction_status(
        receiver.at("/status/result"), receiver.at("/status/timeout"), original_conversation_id="payout-4-attempt-1"
    )
    assert isinstance(asked, AsyncAck) and asked.response_code == "0"
    answer = result_of(receiver, asked, "/status/result")
    assert answer.ok
    assert answer.parameters["TransactionStatus"] == "Completed"
    assert answer.parameters["ConversationID"] == lost.conversation_id

    by_receipt = client.transaction_status(
        receiver.at("/status/result"), receiver.at("/status/timeout"), transaction_id=answer.parameters["ReceiptNo"]
    )
    assert result_of(receiver, by_receipt, "/status/result").parameters["Amount"] == 300
    with pytest.raises(ValueError):
        client.transaction_status(receiver.at("/status/result"), receiver.at("/status/timeout"))


def test_a_revoked_token_is_replaced_once_for_b2c_too(app, client, receiver, payout_urls):
    client.access_token()
    with app.app_context():
        SandboxToken.query.delete()  # the B2C family answers 401.002.01
        db.session.commit()
    ack = client.b2c_payment("payout-5-attempt-1", "254712345678", 20, "Pay", *payout_urls)
    assert ack.response_code == "0"
    with app.app_context():
        assert SandboxToken.query.count() == 1


def test_the_security_credential_is_fresh_each_time_and_needs_a_certificate(client):
    first = security_credential("Safaricom999!*!", client.certificate_pem)
    second = security_credential("Safaricom999!*!", client.certificate_pem)
    assert first != second and len(first) == len(second) == 344  # 256 bytes of RSA-2048, base64
    for bad in ("", "not a certificate", client.certificate_pem.replace("CERTIFICATE", "PUBLIC KEY")):
        with pytest.raises(ValueError):
            security_credential("x", bad)
    assert read_certificate(client.certificate_pem).subject.rfc4514_string().startswith("CN=Daraja simulator")


def test_b2c_without_an_initiator_is_refused_before_anything_is_sent(app, accounts, receiver, payout_urls):
    with app.app_context():
        merchant = db.session.get(Merchant, accounts["merchant"]["id"])
        merchant.daraja_certificate = None
        db.session.commit()
        with pytest.raises(NotConfigured):
            daraja_initiator_for(merchant)
        plain = daraja_for(merchant)  # STK still works without one
    with pytest.raises(NoInitiator):
        plain.b2c_payment("p", "254712345678", 20, "Pay", *payout_urls)
    with app.app_context():
        assert SandboxToken.query.count() == 0  # not even a token was fetched


def test_describe_certificate_for_the_settings_page(client):
    info = describe_certificate(client.certificate_pem)
    assert "CN=Daraja simulator" in info.subject
    assert len(info.fingerprint.split(":")) == 32
    assert info.expires.year > 2030


def test_parse_result_reads_daraja_whichever_types_it_uses():
    result = parse_result(
        {
            "Result": {
                "ResultType": "0",
                "ResultCode": "2001",
                "ResultDesc": "The initiator information is invalid.",
                "OriginatorConversationID": "6618-1387084-1",
                "ConversationID": "AG_20180128_0000650adeb6d1e32571",
                "TransactionID": "MAS0000000",
                "ResultParameters": {"ResultParameter": {"Key": "Amount", "Value": 5}},
                "ReferenceData": {"ReferenceItem": [{"Key": "Occasion"}]},
            }
        }
    )
    assert (result.result_type, result.result_code, result.ok) == ("0", "2001", False)
    assert result.parameters == {"Amount": 5} and result.reference == {"Occasion": None}
    for body in (None, [], {}, {"Result": []}, {"Result": {"ResultDesc": "no code"}}, {"Body": {"stkCallback": {}}}):
        with pytest.raises(ValueError):
            parse_result(body)
