"""Daraja callbacks through the inbox: hostile bytes are stored and acknowledged, the hot
path is a few explicit statements, tokens are never stored in clear, and a callback alone
never moves a final payment."""

import json
import threading
from contextlib import contextmanager
from datetime import timedelta

import pytest
from sqlalchemy import event

from portal.extensions import db
from portal.models import Callback, Payment, PaymentEvent, PaymentStatus
from portal.services.links import callback_token
from portal.timeutil import utcnow
from tests.conftest import wait_for
from tests.helpers import stk_payment

S = PaymentStatus
CHECKOUT_ID = "ws_CO_24112026101010123708374149"


def make_payment(merchant_id, status=S.PROCESSING, checkout_request_id=CHECKOUT_ID, **kw) -> Payment:
    return stk_payment(
        merchant_id, kw.pop("reference", "PAYINBOX1"), status, checkout_request_id=checkout_request_id, **kw
    )


def success(checkout_id=CHECKOUT_ID, amount=100, phone=254708374149, code=0) -> dict:
    items = [
        {"Name": "Amount", "Value": amount},
        {"Name": "MpesaReceiptNumber", "Value": "UKM1234567"},
        {"Name": "TransactionDate", "Value": 20261124101010},
    ]
    if phone is not None:
        items.append({"Name": "PhoneNumber", "Value": phone})
    stk = {
        "MerchantRequestID": "1-2-3",
        "CheckoutRequestID": checkout_id,
        "ResultCode": code,
        "ResultDesc": "The service request is processed successfully.",
    }
    if code == 0:
        stk["CallbackMetadata"] = {"Item": items}
    return {"Body": {"stkCallback": stk}}


def url(ref: str, path: str = "/callback") -> str:
    return f"{path}?ref={ref}&token={callback_token(ref)}"


@contextmanager
def counted():
    statements: list[str] = []

    here = threading.get_ident()

    def count(_conn, _cursor, statement, *_args):
        if threading.get_ident() == here:  # the request, not the background worker's jobs
            statements.append(statement.split()[0].upper())

    event.listen(db.engine, "before_cursor_execute", count)
    try:
        yield statements
    finally:
        event.remove(db.engine, "before_cursor_execute", count)


def outcomes() -> list[str]:
    return [c.outcome for c in Callback.query.order_by(Callback.id)]


HOSTILE = {
    "nul byte": b'{"Body":{"stkCallback":{"CheckoutRequestID":"ws_CO_\x00x","ResultCode":0}}}',
    "escaped nul": b'{"Body":{"stkCallback":{"CheckoutRequestID":"ws_CO_\\u0000x","ResultCode":0}}}',
    "lone surrogate": b'{"Body":{"stkCallback":{"CheckoutRequestID":"ws_CO_\\ud800","ResultCode":0}}}',
    "invalid utf-8": b'{"Body":{"stkCallback":{"CheckoutRequestID":"\xff\xfe","ResultCode":0}}}',
    "deep nesting": b"[" * 30_000 + b"]" * 30_000,
    "infinity": b'{"Body":{"stkCallback":{"CheckoutRequestID":"ws_CO_x","ResultCode":Infinity}}}',
    "huge number": b'{"Body":{"stkCallback":{"CheckoutRequestID":"ws_CO_x","ResultCode":1' + b"0" * 5000 + b"}}}",
    "not json": b"\x00\x01\x02 hello",
    "empty": b"",
}


@pytest.mark.parametrize("name", list(HOSTILE))
@pytest.mark.parametrize("path", ["/callback", "/api/mpesa/callback/stk", "/api/payments/mpesa/callback"])
def test_any_bytes_are_stored_as_they_came_and_acknowledged(ctx, client, name, path):
    raw = HOSTILE[name]
    answer = client.post(path, data=raw, content_type="application/json")
    assert answer.status_code == 200
    assert answer.is_json and answer.get_json()  # the path's own acknowledgement
    cb = Callback.query.one()
    assert bytes(cb.raw) == raw
    assert cb.outcome == "invalid" and cb.outcome_detail


def test_a_poisoned_row_never_stops_the_sweeper_for_anyone(ctx, app, client, accounts):
    """The probe: an anonymous POST whose CheckoutRequestID holds NUL made every later sweep
    fail. Now it is stored as invalid, and a stored-but-unread callback still settles."""
    client.post("/callback", data=HOSTILE["nul byte"], content_type="application/json")
    client.post("/callback", data=HOSTILE["lone surrogate"], content_type="application/json")
    p = make_payment(accounts["merchant"]["id"])
    unread = Callback(
        provider="daraja",
        kind="stk",
        path="/callback",
        raw=json.dumps(success()).encode(),
        headers={},
        query_string=f"ref={p.reference}&token=redacted",
        token_valid=True,
        received_at=utcnow() - timedelta(minutes=2),
    )
    db.session.add(unread)
    db.session.commit()
    from portal.services.sweeper import sweep

    result = sweep()
    assert result["callbacks_read"] == 1, result
    assert not any(str(v).startswith("error") for v in result.values()), result
    assert db.session.get(Payment, p.id).status == S.COMPLETED
    assert outcomes() == ["invalid", "invalid", "applied"]


def test_a_row_whose_interpretation_fails_records_it_and_the_others_settle(ctx, app, accounts, monkeypatch):
    from portal.services import inbox
    from portal.services.sweeper import sweep

    first = make_payment(accounts["merchant"]["id"], reference="PAYONE", checkout_request_id="ws_CO_one")
    second = make_payment(accounts["merchant"]["id"], reference="PAYTWO", checkout_request_id="ws_CO_two")
    old = utcnow() - timedelta(minutes=2)
    for p in (first, second):
        db.session.add(
            Callback(
                provider="daraja",
                kind="stk",
                path="/callback",
                headers={},
                token_valid=True,
                raw=json.dumps(success(p.checkout_request_id)).encode(),
                received_at=old,
                query_string=f"ref={p.reference}&token=redacted",
            )
        )
    db.session.commit()
    real = inbox._INTERPRETERS[("daraja", "stk")]

    def breaks_on_the_first(item):
        if b"ws_CO_one" in item.raw:
            raise RuntimeError("a bug that only this row triggers")
        return real(item)

    monkeypatch.setitem(inbox._INTERPRETERS, ("daraja", "stk"), breaks_on_the_first)
    sweep()
    rows = Callback.query.order_by(Callback.id).all()
    assert [r.outcome for r in rows] == ["error", "applied"]
    assert "a bug that only this row triggers" in rows[0].outcome_detail
    assert (db.session.get(Payment, first.id).status, db.session.get(Payment, second.id).status) == (
        S.PROCESSING,
        S.COMPLETED,
    )


@pytest.mark.parametrize("raw", [b"{" + b" " * (64 * 1024) + b"}", b"[" * 100_000])
def test_a_body_over_the_limit_is_refused_unread(ctx, client, raw):
    answer = client.post("/callback", data=raw, content_type="application/json")
    assert answer.status_code == 413
    assert answer.get_json()["error"] == "Request Entity Too Large"  # the checkout document's error format
    assert Callback.query.count() == 0


def test_callback_ingest_is_a_few_explicit_statements(ctx, client, accounts):
    target = url(make_payment(accounts["merchant"]["id"]).reference)
    body = json.dumps(success())
    with counted() as applied:
        assert client.post(target, data=body, content_type="application/json").status_code == 200
    with counted() as duplicate:
        assert client.post(target, data=body, content_type="application/json").status_code == 200
    assert outcomes() == ["applied", "duplicate"]
    # store raw; read the payment; compare-and-set and the event (on PostgreSQL one statement,
    # a data-modifying CTE); the row's outcome
    if db.engine.dialect.name == "postgresql":
        assert applied == ["INSERT", "SELECT", "WITH", "UPDATE"], applied
    else:
        assert applied == ["INSERT", "SELECT", "UPDATE", "INSERT", "UPDATE"], applied
    assert duplicate == ["INSERT", "SELECT", "UPDATE"], duplicate


def test_tokens_are_not_stored_in_clear(ctx, client, accounts):
    p = make_payment(accounts["merchant"]["id"])
    client.post(url(p.reference), data=json.dumps(success()), content_type="application/json")
    cb = Callback.query.one()
    assert callback_token(p.reference) not in (cb.query_string or "")
    assert cb.query_string == f"ref={p.reference}&token=redacted"
    assert cb.token_valid and cb.outcome == "applied"


def test_a_success_without_the_customers_phone_is_not_applied_as_sent(ctx, client, accounts):
    p = make_payment(accounts["merchant"]["id"])
    client.post(url(p.reference), data=json.dumps(success(phone=None)), content_type="application/json")
    cb = Callback.query.one()
    assert (cb.outcome, db.session.get(Payment, p.id).status) == ("rejected", S.PROCESSING)
    assert "phone" in cb.outcome_detail


def test_a_late_success_for_a_cancelled_payment_waits_for_mpesa(app, api, live_server):
    """A valid token is not a bearer credential for money: the success is applied only when
    the STK query confirms it (here the simulator says 1032, so it stays cancelled)."""
    import requests

    from tests.helpers import events, initiate, payment_by_checkout_id, sandbox_request

    checkout_id = initiate(api, phone="254712341032").json()["data"]["checkout_request_id"]
    wait_for(lambda: payment_by_checkout_id(app, checkout_id).status == S.CANCELLED, what="the cancel")
    req = sandbox_request(app, checkout_id)
    with app.app_context():
        callback_url = live_server + url(payment_by_checkout_id(app, checkout_id).reference)
    assert req.callback_url.startswith(live_server + "/callback?")
    answer = requests.post(callback_url, json=success(checkout_id, phone=254712341032), timeout=10)
    assert answer.json()["status"] == "FAILED"
    wait_for(lambda: payment_by_checkout_id(app, checkout_id).last_queried_at, what="the confirming STK query")
    with app.app_context():
        cb = Callback.query.order_by(Callback.id.desc()).first()
        assert (cb.outcome, cb.token_valid) == ("rejected", True)
        assert "confirms" in cb.outcome_detail
    assert [e[1] for e in events(app, checkout_id)] == ["pending", "processing", "cancelled"]


def test_the_same_payment_settles_once_across_paths(ctx, client, accounts):
    p = make_payment(accounts["merchant"]["id"])
    body = json.dumps(success())
    for path in ("/callback", "/api/mpesa/callback/stk", "/api/payments/mpesa/callback"):
        assert client.post(url(p.reference, path), data=body, content_type="application/json").status_code == 200
    assert outcomes() == ["applied", "duplicate", "duplicate"]
    assert PaymentEvent.query.filter_by(payment_id=p.id, to_status=S.COMPLETED).count() == 1


def test_errors_answer_in_the_format_of_the_path(ctx, client):
    """One table maps URL prefixes to error formats: the simulator's envelope stays on its paths."""
    sim = client.get("/sandbox/daraja/mpesa/stkpush/v1/processrequest")
    assert sim.status_code == 405 and sim.get_json()["errorCode"] == "405.001"
    checkout = client.get("/callback")
    assert checkout.status_code == 405 and checkout.get_json()["error"] == "Method Not Allowed"
    assert "POST" in checkout.headers["Allow"]
    api = client.get("/api/nothing-here")
    assert api.status_code == 404 and api.get_json()["success"] is False and api.get_json()["error"] == "NOT_FOUND"
    page = client.get("/no-such-page")
    assert page.status_code == 404 and not page.is_json


def test_an_api_body_over_the_limit_is_refused_in_the_documents_format(ctx, client, accounts):
    headers = {"Authorization": f"Bearer {accounts['merchant']['api_key']}"}
    answer = client.post(
        "/initiate_payment",
        data=b'{"phone": "' + b"7" * (64 * 1024) + b'"}',
        headers=headers,
        content_type="application/json",
    )
    assert answer.status_code == 413 and answer.get_json()["error"] == "Request Entity Too Large"


def test_a_callback_after_a_query_settled_the_payment_adds_its_receipt(ctx, client, accounts):
    """An STK query's answer carries no receipt: the callback that follows it supplies one,
    without moving the payment or writing another event."""
    p = make_payment(accounts["merchant"]["id"], status=S.COMPLETED)
    assert p.receipt is None
    body = json.dumps(success())
    assert (
        client.post(url(p.reference, "/api/mpesa/callback/stk"), data=body, content_type="application/json").status_code
        == 200
    )
    db.session.expire_all()
    kept = db.session.get(Payment, p.id)
    assert (kept.status, kept.receipt, kept.transaction_date) == (S.COMPLETED, "UKM1234567", "20261124101010")
    assert outcomes() == ["duplicate"]
    assert PaymentEvent.query.filter_by(payment_id=p.id).count() == 0

    other = json.dumps(success()).replace("UKM1234567", "UKM7654321")  # a receipt, once kept, stays
    client.post(url(p.reference, "/api/mpesa/callback/stk"), data=other, content_type="application/json")
    db.session.expire_all()
    assert db.session.get(Payment, p.id).receipt == "UKM1234567"


def test_an_untrusted_callback_never_adds_a_receipt(ctx, client, accounts):
    p = make_payment(accounts["merchant"]["id"], status=S.COMPLETED)
    client.post("/api/mpesa/callback/stk", data=json.dumps(success()), content_type="application/json")
    db.session.expire_all()
    assert db.session.get(Payment, p.id).receipt is None
