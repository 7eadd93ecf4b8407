"""The delivery module every simulator uses, over real HTTP: duplicates, attempts lost and retried
with backoff, receivers that refuse, out-of-order groups, the delay, and the evidence it keeps
(with callback tokens redacted)."""

import time
from datetime import datetime

import pytest
import requests
from sqlalchemy import text

from portal.extensions import db
from portal.models import SandboxStkRequest
from portal.sandbox import delivery
from portal.sandbox.daraja import stk
from tests.conftest import wait_for


def history(app, subject: str) -> list[dict]:
    with app.app_context():
        return delivery.history("daraja", subject)


def settled(app, subject: str, count: int = 1, timeout: float = 15.0) -> list[dict]:
    """The deliveries for `subject` once `count` of them are delivered or failed for good."""

    def done():
        rows = history(app, subject)
        return rows if sum(r["status"] in delivery.FINAL for r in rows) >= count else None

    return wait_for(done, timeout=timeout, what=f"{count} deliveries for {subject} to finish")


def switches(live_server: str, **values) -> dict:
    answer = requests.post(f"{live_server}/sandbox/faults", json=values, timeout=10)
    assert answer.status_code == 200, answer.text
    return answer.json()["switches"]


def test_copies_set_at_run_time_deliver_identical_duplicates_each_on_record(app, sim, receiver, live_server):
    assert switches(live_server, SANDBOX_CALLBACK_COPIES=3)["SANDBOX_CALLBACK_COPIES"]["value"] == 3
    ack = sim.accepted(phone="254712345678", Amount=20, CallBackURL=receiver.url)
    checkout_id = ack["CheckoutRequestID"]
    rows = settled(app, checkout_id, count=3)
    assert len(receiver.bodies(checkout_id)) == 3  # all three handled: nothing more is coming
    first, second, third = receiver.bodies(checkout_id)
    assert first == second == third
    assert [(r["copy"], r["status"], [a["outcome"] for a in r["attempts"]]) for r in rows] == [
        (1, "delivered", ["HTTP 200"]),
        (2, "delivered", ["HTTP 200"]),
        (3, "delivered", ["HTTP 200"]),
    ]
    with app.app_context():
        assert SandboxStkRequest.query.filter_by(checkout_request_id=checkout_id).one().callbacks_sent == 3


def test_a_callback_lost_twice_arrives_on_the_third_attempt_with_backoff(app, sim, receiver):
    app.config.update(SANDBOX_FAULT_CALLBACK_FAILS=2, SANDBOX_FAULT_CALLBACK_BACKOFF=0.3)
    ack = sim.accepted(phone="254712345001", CallBackURL=receiver.url)
    checkout_id = ack["CheckoutRequestID"]
    [row] = settled(app, checkout_id)
    assert row["status"] == "delivered"
    assert [(a["number"], a["ok"], a["outcome"]) for a in row["attempts"]] == [
        (1, False, "lost on the way (fault switch)"),
        (2, False, "lost on the way (fault switch)"),
        (3, True, "HTTP 200"),
    ]
    assert receiver.refused == []  # lost attempts never reached the receiver
    [body] = receiver.bodies(checkout_id)  # and it got the callback exactly once
    assert body["Body"]["stkCallback"]["ResultCode"] == 0
    times = [datetime.fromisoformat(a["at"]) for a in row["attempts"]]
    gaps = [(later - earlier).total_seconds() for earlier, later in zip(times, times[1:], strict=False)]
    assert gaps[0] >= 0.3 and gaps[1] >= 0.6, f"retries came {gaps}s apart; the backoff is 0.3 s, doubling"


def test_daraja_does_not_retry_a_refused_callback(app, sim, receiver):
    receiver.refuse = [500]
    ack = sim.accepted(phone="254712345002", CallBackURL=receiver.url)
    [row] = settled(app, ack["CheckoutRequestID"])  # handled: the one attempt is on record
    assert (row["status"], [a["outcome"] for a in row["attempts"]]) == ("failed", ["HTTP 500"])
    assert len(receiver.refused) == 1 and receiver.received == []


def test_retries_switched_on_carry_a_refused_callback_through(app, sim, receiver):
    app.config.update(SANDBOX_FAULT_CALLBACK_RETRIES=3, SANDBOX_FAULT_CALLBACK_BACKOFF=0.2)
    receiver.refuse = [500, 503]
    ack = sim.accepted(phone="254712345003", CallBackURL=receiver.url)
    [row] = settled(app, ack["CheckoutRequestID"])
    assert row["status"] == "delivered"
    assert [(a["status_code"], a["outcome"]) for a in row["attempts"]] == [
        (500, "HTTP 500"),
        (503, "HTTP 503"),
        (200, "HTTP 200"),
    ]
    assert len(receiver.refused) == 2 and len(receiver.bodies(ack["CheckoutRequestID"])) == 1


def test_an_unreachable_receiver_is_recorded_as_a_failed_attempt(app, sim):
    sim.sink = "http://127.0.0.1:9/mpesa/callback"  # nothing listens there
    ack = sim.accepted(phone="254712345004")
    [row] = settled(app, ack["CheckoutRequestID"])
    assert row["status"] == "failed"
    assert [a["outcome"] for a in row["attempts"]] == ["failed: ConnectionError"]


def test_with_reordering_a_later_callback_arrives_before_an_earlier_one(app, sim, receiver):
    app.config.update(SANDBOX_FAULT_REORDER=2, SANDBOX_FAULT_REORDER_WAIT=30)
    first = sim.accepted(phone="254712345005", CallBackURL=receiver.url)["CheckoutRequestID"]
    [held] = wait_for(lambda: history(app, first), what="the first callback to be handed to delivery")
    assert held["status"] == "held"
    second = sim.accepted(phone="254712345006", CallBackURL=receiver.url)["CheckoutRequestID"]
    receiver.wait(2)
    assert [b["Body"]["stkCallback"]["CheckoutRequestID"] for b in receiver.bodies()] == [second, first]
    settled(app, first)
    assert len(receiver.bodies()) == 2  # each once


def test_a_held_callback_goes_out_alone_once_its_group_has_waited_long_enough(app, sim, receiver):
    app.config.update(SANDBOX_FAULT_REORDER=3, SANDBOX_FAULT_REORDER_WAIT=1.0)
    ack = sim.accepted(phone="254712345007", CallBackURL=receiver.url)
    [row] = wait_for(lambda: history(app, ack["CheckoutRequestID"]), what="the callback to be handed to delivery")
    handed = time.monotonic()
    assert row["status"] == "held"
    receiver.wait(1, ack["CheckoutRequestID"])
    assert receiver.received[0]["at"] - handed >= 0.8  # it waited (the row was seen a little after it was made)


def test_the_callback_token_is_never_kept_in_clear(app, sim, receiver):
    secret = "0123456789abcdef0123456789abcdef01234567"
    ack = sim.accepted(phone="254712345008", CallBackURL=f"{receiver.url}?ref=ORDER-1&token={secret}")
    checkout_id = ack["CheckoutRequestID"]
    [row] = settled(app, checkout_id)
    assert receiver.received[0]["query"] == f"ref=ORDER-1&token={secret}"  # the receiver gets it whole
    assert row["url"] == f"{receiver.url}?ref=redacted&token=redacted"
    with app.app_context():
        stored = [
            db.session.execute(text(f"SELECT * FROM {table}")).all()
            for table in ("sandbox_stk_requests", "sandbox_deliveries", "sandbox_delivery_attempts")
        ]
    assert stored[0] and stored[1] and stored[2]
    assert secret not in repr(stored)
    with app.app_context():  # the simulator can still read it back to deliver
        assert SandboxStkRequest.query.filter_by(checkout_request_id=checkout_id).one().callback_url.endswith(secret)


def test_delivery_waits_its_delay_and_passes_body_and_headers_as_given(app, receiver):
    """As Paystack's simulator will use it: a signed body sent as is, retried the provider's way."""
    receiver.refuse = [502]
    body = '{"event":"charge.success","data":{"reference":"T1"}}'
    headers = {"Content-Type": "application/json", "x-paystack-signature": "abc123"}
    asked = time.monotonic()  # the delay runs from the call (a busy commit after it must not count)
    with app.app_context():
        delivery.deliver(
            receiver.url,
            body,
            provider="paystack",
            kind="webhook",
            subject="T1",
            delay=0.6,
            headers=headers,
            retry=delivery.RetryPolicy(retries=1, backoff=0.1),
        )
        db.session.commit()
    wait_for(lambda: receiver.received, what="the webhook")
    [refused], [record] = receiver.refused, receiver.received
    assert refused["at"] - asked >= 0.6
    assert record["headers"]["X-Paystack-Signature"] == "abc123"
    assert record["body"] == {"event": "charge.success", "data": {"reference": "T1"}}

    def both_attempts_recorded():  # the job records an attempt after its answer has come back
        with app.app_context():
            [row] = delivery.history("paystack", "T1")
        return row if len(row["attempts"]) == 2 else None

    row = wait_for(both_attempts_recorded, what="the second attempt's record")
    assert [a["outcome"] for a in row["attempts"]] == ["HTTP 502", "HTTP 200"]


def test_an_early_resolution_job_puts_itself_back_instead_of_sleeping(app, sim, receiver):
    app.config["SANDBOX_CALLBACK_DELAY"] = 2.0
    pushed = time.monotonic()  # before the push: the simulator counts the delay from its prompt, made before it answers
    ack = sim.accepted(phone="254712345009", CallBackURL=receiver.url)
    with app.app_context():
        req = SandboxStkRequest.query.filter_by(checkout_request_id=ack["CheckoutRequestID"]).one()
        started = time.monotonic()
        assert stk.resolve_and_call_back(req.id) == "not yet"
        assert time.monotonic() - started < 0.5  # it did not wait out the 2 s
        db.session.expire_all()
        assert db.session.get(SandboxStkRequest, req.id).is_open
    receiver.wait(1, ack["CheckoutRequestID"])
    assert receiver.received[0]["at"] - pushed >= 2.0  # and the prompt was still answered on time, once
    settled(app, ack["CheckoutRequestID"])
    assert len(receiver.bodies()) == 1


@pytest.mark.parametrize(
    "url, kept",
    [
        ("https://shop.example/cb?token=abc&ref=1", "https://shop.example/cb?token=redacted&ref=redacted"),
        ("https://user:pw@shop.example/cb#frag", "https://shop.example/cb"),
        ("http://127.0.0.1:8000/callback", "http://127.0.0.1:8000/callback"),
    ],
)
def test_redact_hides_every_query_value_and_password(url, kept):
    assert delivery.redact(url) == kept
