"""The real Africa's Talking client (portal/providers/africastalking.py) over real HTTP against the
simulator on the live server: what it sends, and each way a send ends as its own typed outcome,
marked worth retrying or final."""

import pytest

from portal.providers.africastalking import (
    LIVE_URL,
    SANDBOX_URL,
    AfricasTalkingClient,
    AtAccountRejected,
    AtAuthError,
    AtBadRequest,
    AtRecipientRejected,
    AtServerError,
    AtUnavailable,
    SmsAccepted,
    base_url_for,
)
from tests.conftest import wait_for
from tests.sandbox.support import AT_PHONE as PHONE
from tests.sandbox.support import At, free_port_url


@pytest.fixture
def at(app, live_server) -> At:
    return At(live_server, app.config["SANDBOX_AT_API_KEY"])


def client_for(app, live_server, key=None, username="sandbox", **kw) -> AfricasTalkingClient:
    key = app.config["SANDBOX_AT_API_KEY"] if key is None else key
    return AfricasTalkingClient(f"{live_server}/sandbox/africastalking", username, key, **kw)


def test_the_host_follows_the_username_as_ats_sdks_choose_it():
    assert base_url_for("sandbox") == SANDBOX_URL and base_url_for("my-shop") == LIVE_URL


def test_a_send_returns_the_recipients_result(app, live_server, at):
    sent = client_for(app, live_server).send(PHONE, "Your code is 123456", sender_id="DEMO-SHOP")
    assert isinstance(sent, SmsAccepted)
    assert (sent.status_code, sent.status, sent.cost, sent.number) == (101, "Success", "KES 0.8000", PHONE)
    (kept,) = at.kept(PHONE)
    assert (kept["messageId"], kept["from"], kept["message"]) == (sent.message_id, "DEMO-SHOP", "Your code is 123456")


def test_without_a_sender_id_ats_default_is_used(app, live_server, at):
    client_for(app, live_server).send(PHONE, "hello")
    assert at.kept(PHONE)[0]["from"] == "AFRICASTKNG"


@pytest.mark.parametrize("key, username", [("wrong", "sandbox"), (None, "my-live-app")])
def test_bad_credentials_are_final(app, live_server, key, username):
    with pytest.raises(AtAuthError) as refused:
        client_for(app, live_server, key=key, username=username).send(PHONE, "hello")
    assert refused.value.status == 401 and refused.value.text == "The supplied authentication is invalid"
    assert not refused.value.retryable


def test_a_missing_field_is_final(app, live_server):
    with pytest.raises(AtBadRequest) as refused:
        client_for(app, live_server).send(PHONE, "")
    assert refused.value.text == "Request is missing required form field 'message'"
    assert not refused.value.retryable


@pytest.mark.parametrize(
    "number, code, status", [("+2541234", 403, "InvalidPhoneNumber"), ("+254711000406", 406, "UserInBlacklist")]
)
def test_a_recipient_that_cannot_receive_is_final_and_its_own_fault(app, live_server, at, number, code, status):
    with pytest.raises(AtRecipientRejected) as refused:
        client_for(app, live_server).send(number, "hello")
    assert (refused.value.status_code, refused.value.status, refused.value.number) == (code, status, number)
    assert refused.value.blames_recipient and not refused.value.retryable


def test_an_account_level_refusal_is_final(app, live_server):
    with pytest.raises(AtAccountRejected) as refused:
        client_for(app, live_server).send(PHONE, "hello", sender_id="A-SENDER-ID-TOO-LONG")
    assert refused.value.message == "InvalidSenderId" and not refused.value.retryable


@pytest.mark.parametrize("bare", [False, True])
def test_a_5xx_is_worth_retrying(app, live_server, at, bare):
    app.config.update(
        SANDBOX_FAULT_API_500=1, SANDBOX_FAULT_API_500_BARE=bare, SANDBOX_FAULT_API_PATHS="/sandbox/africastalking"
    )
    with pytest.raises(AtServerError) as failed:
        client_for(app, live_server).send(PHONE, "hello")
    assert failed.value.status == 500 and failed.value.retryable
    assert client_for(app, live_server).send(PHONE, "hello").status_code == 101


def test_a_timeout_is_worth_retrying_and_may_have_sent(app, live_server, at):
    app.config.update(
        SANDBOX_FAULT_API_TIMEOUT=1, SANDBOX_FAULT_API_HANG=1.5, SANDBOX_FAULT_API_PATHS="/sandbox/africastalking"
    )
    with pytest.raises(AtUnavailable) as failed:
        client_for(app, live_server, timeout=0.3).send(PHONE, "hello")
    assert failed.value.retryable and failed.value.maybe_sent
    wait_for(lambda: at.kept(PHONE), what="the simulator to take the message after the hang")  # it did send


def test_an_unreachable_host_is_worth_retrying_and_sent_nothing(app):
    client = AfricasTalkingClient(free_port_url(""), "sandbox", "key", timeout=2)
    with pytest.raises(AtUnavailable) as failed:
        client.send(PHONE, "hello")
    assert failed.value.retryable and not failed.value.maybe_sent
