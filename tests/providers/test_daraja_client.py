"""The real Daraja client (portal/providers/daraja.py) over real HTTP against the simulator on
the live server: token caching and refresh, STK push and query, and its typed errors."""

import socket
import threading
import time

import pytest

from portal.extensions import db
from portal.models import Merchant, SandboxToken
from portal.providers.daraja import (
    DarajaClient,
    DarajaError,
    DarajaUnavailable,
    StkAck,
    StkQueryResult,
    stk_password,
)
from portal.sandbox.daraja.stk import PUBLIC_PASSKEY, PUBLIC_SHORTCODE
from portal.services.mpesa import daraja_for
from tests.conftest import wait_for
from tests.helpers import sandbox_request

PHONE = "254708374149"


def credentials(app, accounts, label="merchant") -> tuple[str, str]:
    with app.app_context():
        merchant = db.session.get(Merchant, accounts[label]["id"])
        return merchant.daraja_consumer_key, merchant.daraja_consumer_secret


def client_for(app, accounts, label="merchant") -> DarajaClient:
    """The client the payments service builds for a merchant."""
    with app.app_context():
        return daraja_for(db.session.get(Merchant, accounts[label]["id"]))


def direct_client(app, base_url, key, secret, passkey=PUBLIC_PASSKEY, **kw) -> DarajaClient:
    return DarajaClient(base_url, key, secret, PUBLIC_SHORTCODE, passkey, cache=app.extensions["redis"], **kw)


def tokens(app) -> list[str]:
    with app.app_context():
        return [t.token for t in SandboxToken.query.order_by(SandboxToken.id)]


@pytest.fixture
def client(app, accounts) -> DarajaClient:
    return client_for(app, accounts)


@pytest.fixture
def callback_url(live_server) -> str:
    return f"{live_server}/sandbox-tests/nowhere"  # where the simulator's callbacks go to die


def test_stk_password_matches_the_reference_vector():
    assert stk_password("174379", PUBLIC_PASSKEY, "20160216165627") == (
        "MTc0Mzc5YmZiMjc5ZjlhYTliZGJjZjE1OGU5N2RkNzFhNDY3Y2QyZTBjODkzMDU5YjEwZjc4ZTZiNzJhZGExZWQyYzkxOTIwMTYwMjE2"
        "MTY1NjI3"
    )


# -- OAuth token cache -------------------------------------------------------------------------
def test_twenty_clients_asking_at_once_fetch_a_single_token(app, accounts, live_server):
    key, secret = credentials(app, accounts)
    base = f"{live_server}/sandbox/daraja"
    barrier = threading.Barrier(20)
    got, errors = [], []

    def ask():
        fresh = direct_client(app, base, key, secret)  # a new instance, as each process would have
        barrier.wait()
        try:
            got.append(fresh.access_token())
        except Exception as exc:  # reported below
            errors.append(repr(exc))

    threads = [threading.Thread(target=ask) for _ in range(20)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert errors == []
    assert len(got) == 20
    assert tokens(app) == [got[0]]  # one fetch from Daraja, shared by all
    assert set(got) == {got[0]}
    redis = app.extensions["redis"]
    [cached] = [k for k in redis.scan_iter("daraja:token:*") if not k.endswith(b":lock")]
    assert redis.get(cached).decode() == got[0]
    assert 3000 < redis.ttl(cached) <= 3599 - 300  # dropped five minutes before Daraja's 3599 s

    # another instance, as the payments service builds it, gets the cached token without a fetch
    assert client_for(app, accounts).access_token() == got[0]
    assert direct_client(app, base, key, secret).access_token() == got[0]
    assert len(tokens(app)) == 1

    # the cache is per credential set: the other merchant's app gets a token of its own
    other = client_for(app, accounts, "other_merchant").access_token()
    assert other != got[0]
    assert tokens(app) == [got[0], other]


def test_a_revoked_token_is_replaced_once_and_the_push_goes_through(app, accounts, client, callback_url):
    old = client.access_token()
    with app.app_context():
        SandboxToken.query.delete()  # Daraja no longer knows the cached token: 404.001.03
        db.session.commit()

    ack = client.stk_push(PHONE, 10, callback_url, "Order1", "Goods")
    assert ack.response_code == "0"
    [new] = tokens(app)  # exactly one new token was fetched
    assert new != old
    assert client.access_token() == new
    assert client_for(app, accounts).access_token() == new  # the cache now holds the new one
    client.stk_query(ack.checkout_request_id)  # the new token works for the next call too
    assert tokens(app) == [new]


def test_wrong_consumer_secret_is_a_daraja_error_and_nothing_is_cached(app, accounts, live_server, callback_url):
    key, secret = credentials(app, accounts)
    bad = direct_client(app, f"{live_server}/sandbox/daraja", key, secret + "x")
    with pytest.raises(DarajaError) as refused:
        bad.stk_push(PHONE, 10, callback_url, "Order1", "Goods")
    assert refused.value.status == 400
    assert refused.value.error_code == "400.008.01"
    assert refused.value.error_message == "Invalid Authentication passed"
    assert tokens(app) == []
    assert list(app.extensions["redis"].scan_iter("daraja:token:*")) == []


# -- STK push and query ------------------------------------------------------------------------
def test_stk_push_returns_the_acknowledgement_and_sends_darajas_limits(app, client, callback_url, live_server):
    assert client.base_url == f"{live_server}/sandbox/daraja"  # daraja_for talks to the simulator
    ack = client.stk_push("254712345678", 150, callback_url, "INVOICE-2024-000123", "Payment for goods and services")
    assert isinstance(ack, StkAck)
    assert ack.checkout_request_id.startswith("ws_CO_") and ack.checkout_request_id.endswith("712345678")
    assert ack.merchant_request_id
    assert ack.response_code == "0"
    assert ack.customer_message == "Success. Request accepted for processing"

    req = sandbox_request(app, ack.checkout_request_id)
    assert (req.phone, req.amount, req.shortcode) == ("254712345678", 150, PUBLIC_SHORTCODE)
    assert req.account_reference == "INVOICE-2024"  # cut to Daraja's 12 characters rather than refused
    assert req.description == "Payment for g"  # and 13
    assert req.callback_url == callback_url
    assert req.merchant_request_id == ack.merchant_request_id

    blank = client.stk_push("254712345679", 1, callback_url, "Order1", "")
    assert sandbox_request(app, blank.checkout_request_id).description == "Payment"


def test_stk_query_is_pending_while_the_prompt_is_open_then_final(app, client, callback_url):
    app.config["SANDBOX_CALLBACK_DELAY"] = 30
    open_ack = client.stk_push("254712340001", 10, callback_url, "Order1", "Goods")
    app.config["SANDBOX_CALLBACK_DELAY"] = 0.3
    cancelled = client.stk_push("254712341032", 10, callback_url, "Order2", "Goods")
    paid = client.stk_push("254712340002", 10, callback_url, "Order3", "Goods")

    assert client.stk_query(open_ack.checkout_request_id) == StkQueryResult(pending=True)

    def final(checkout_id):
        result = client.stk_query(checkout_id)
        return None if result.pending else result

    assert wait_for(lambda: final(cancelled.checkout_request_id), what="the cancelled result") == StkQueryResult(
        False, "1032", "Request cancelled by user"
    )
    assert wait_for(lambda: final(paid.checkout_request_id), what="the paid result") == StkQueryResult(
        False, "0", "The service request is processed successfully."
    )
    assert client.stk_query(open_ack.checkout_request_id).pending  # the long prompt is still open


def test_daraja_refusals_carry_darajas_code_and_message(app, accounts, live_server, client, callback_url):
    key, secret = credentials(app, accounts)
    wrong_passkey = direct_client(app, f"{live_server}/sandbox/daraja", key, secret, passkey="0" * 64)
    unknown_shortcode = DarajaClient(
        f"{live_server}/sandbox/daraja", key, secret, "600000", PUBLIC_PASSKEY, cache=app.extensions["redis"]
    )
    cases = [
        (
            lambda: wrong_passkey.stk_push(PHONE, 10, callback_url, "Order1", "Goods"),
            500,
            "500.001.1001",
            "Wrong credentials",
        ),
        (lambda: wrong_passkey.stk_query("ws_CO_01012024120000000708374149"), 500, "500.001.1001", "Wrong credentials"),
        (
            lambda: unknown_shortcode.stk_push(PHONE, 10, callback_url, "Order1", "Goods"),
            500,
            "500.001.1001",
            "Merchant does not exist",
        ),
        (
            lambda: client.stk_push("0708374149", 10, callback_url, "Order1", "Goods"),
            400,
            "400.002.02",
            "Bad Request - Invalid PartyA",
        ),
        (
            lambda: client.stk_push(PHONE, 0, callback_url, "Order1", "Goods"),
            400,
            "400.002.02",
            "Bad Request - Invalid Amount",
        ),
        (
            lambda: client.stk_push(PHONE, 10, "not a url", "Order1", "Goods"),
            400,
            "400.002.02",
            "Bad Request - Invalid CallBackURL",
        ),
        (
            lambda: client.stk_query("ws_CO_01012024120000000708374149"),
            400,
            "400.002.02",
            "Bad Request - Invalid CheckoutRequestID",
        ),
    ]
    for call, status, code, message in cases:
        with pytest.raises(DarajaError) as refused:
            call()
        assert (refused.value.status, refused.value.error_code, refused.value.error_message) == (status, code, message)
        assert refused.value.request_id
        assert not refused.value.subscriber_locked
        assert not refused.value.retryable


def test_a_second_push_to_a_busy_subscriber_is_flagged_as_locked(app, client, callback_url):
    app.config["SANDBOX_CALLBACK_DELAY"] = 30
    client.stk_push("254711223344", 10, callback_url, "Order1", "Goods")
    with pytest.raises(DarajaError) as refused:
        client.stk_push("254711223344", 20, callback_url, "Order2", "Goods")
    assert refused.value.subscriber_locked is True
    assert refused.value.error_code == "500.001.1001"
    assert refused.value.status == 500
    assert not refused.value.retryable
    assert client.stk_push("254711223345", 20, callback_url, "Order2", "Goods").response_code == "0"


# -- Daraja out of reach -----------------------------------------------------------------------
def test_unreachable_daraja_is_unavailable_and_nothing_was_sent(app, accounts, callback_url):
    with socket.socket() as probe:  # a port that was free a moment ago: nothing listens there
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    key, secret = credentials(app, accounts)
    down = direct_client(app, f"http://127.0.0.1:{port}/sandbox/daraja", key, secret, timeout=2)
    calls = {
        "token": down.access_token,
        "push": lambda: down.stk_push(PHONE, 10, callback_url, "Order1", "Goods"),
        "query": lambda: down.stk_query("ws_CO_01012024120000000708374149"),
    }
    for name, call in calls.items():
        started = time.monotonic()
        with pytest.raises(DarajaUnavailable) as unavailable:
            call()
        assert unavailable.value.maybe_sent is False, name
        assert time.monotonic() - started < 2, name  # refused at once, not timed out


def test_daraja_that_never_answers_is_unavailable_and_may_have_been_sent(app, accounts, callback_url):
    with socket.socket() as silent:  # accepts connections (the kernel does) and never answers
        silent.bind(("127.0.0.1", 0))
        silent.listen(8)
        key, secret = credentials(app, accounts)
        port = silent.getsockname()[1]
        client = direct_client(app, f"http://127.0.0.1:{port}/sandbox/daraja", key, secret, timeout=0.5)
        started = time.monotonic()
        with pytest.raises(DarajaUnavailable) as unavailable:
            client.stk_push(PHONE, 10, callback_url, "Order1", "Goods")
        assert unavailable.value.maybe_sent is True
        assert time.monotonic() - started < 5  # the configured timeout is honoured
