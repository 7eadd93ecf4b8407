"""GET /api/events over real HTTP: a push's events in order on its merchant's stream only,
resume with Last-Event-ID, heartbeats and the stream's lifetime, the per-process cap, and a
Redis outage that costs live events but never a payment."""

import socket

import pytest
import requests

from portal.api.gateway import events as streams
from portal.extensions import db
from portal.models import Callback
from portal.queueing import redis_client
from portal.services.links import callback_token
from portal.services.transitions import transition
from tests.conftest import wait_for
from tests.helpers import EventStream, sandbox_request, stk_payment

READ_TIMEOUT = 10  # seconds one read may wait: well over a heartbeat


@pytest.fixture(autouse=True)
def live_events(app):
    app.config.update(EVENTS_HEARTBEAT=0.25, EVENTS_STREAM_LIFETIME=120.0)
    yield
    # a stream the client closed ends at its next heartbeat: none may hold a place in the next test
    wait_for(lambda: slots(app).open == 0, what="the server to end the closed streams")


def slots(app):
    with app.app_context():
        return streams.slots()


def open_stream(api, last_event_id=None, **params) -> requests.Response:
    headers = {"Last-Event-ID": str(last_event_id)} if last_event_id is not None else {}
    return api.http.get(
        api.base + "/api/events", params=params, headers=headers, stream=True, timeout=(5, READ_TIMEOUT)
    )


def stream(api, last_event_id=None, **params) -> EventStream:
    answer = open_stream(api, last_event_id, **params)
    assert answer.status_code == 200, answer.text
    assert answer.headers["Content-Type"].startswith("text/event-stream")
    return EventStream(answer)


def push(api, phone="254708374149", amount=100) -> dict:
    answer = api.post("/api/mpesa/stk-push", json={"phoneNumber": phone, "amount": amount})
    assert answer.status_code == 200, answer.text
    return answer.json()["data"]


def of(tx: dict, status: str):
    return lambda frame: frame["data"]["transactionId"] == tx["id"] and frame["data"]["status"] == status


def settled(api, tx: dict) -> dict:
    def final():
        now = api.get(f"/api/transactions/{tx['id']}").json()["data"]
        return now if now["status"] not in ("pending", "processing") else None

    return wait_for(final, what=f"transaction {tx['id']} to settle")


def until_heartbeat(events: EventStream) -> list[dict]:
    """The event frames before the next heartbeat comment."""
    seen = []
    for frame in events.frames():
        if "heartbeat" in frame.get("comments", []):
            return seen
        if "event" in frame:
            seen.append(frame)
    raise AssertionError(f"the stream ended before a heartbeat; got {seen}")


def test_a_push_shows_its_events_in_order_on_its_merchants_stream_only(api, other_api):
    with stream(api) as mine, stream(other_api) as theirs:
        tx = push(api)
        frames = mine.events_until(of(tx, "completed"))
        ours = [f for f in frames if f["data"]["transactionId"] == tx["id"]]
        assert [f["event"] for f in ours] == ["payment.pending", "payment.processing", "payment.completed"]
        assert [(f["data"]["previousStatus"], f["data"]["status"]) for f in ours] == [
            (None, "pending"),
            ("pending", "processing"),
            ("processing", "completed"),
        ]
        ids = [int(f["id"]) for f in ours]
        assert ids == sorted(ids) and [f["data"]["id"] for f in ours] == ids
        assert {(f["data"]["reference"], f["data"]["type"], f["data"]["amount"]) for f in ours} == {
            (tx["reference"], "STK_PUSH", 100)
        }
        assert [f["data"]["source"] for f in ours] == ["api", "api", "callback"]

        # Redis delivers one subscriber's messages in the order published: once the other
        # merchant's stream shows its own later payment, anything of ours would have come first.
        own = push(other_api, phone="254712345678")
        seen = theirs.events_until(of(own, "completed"))
        assert {f["data"]["transactionId"] for f in seen} == {own["id"]}
        assert tx["reference"] not in str(seen)


def test_resume_with_last_event_id_gets_exactly_the_missed_events(api):
    with stream(api) as first:
        tx = push(api)
        pending = first.events_until(of(tx, "pending"))[-1]
    settled(api, tx)  # processing and completed happen while nobody listens

    with stream(api, last_event_id=pending["id"]) as resumed:
        missed = until_heartbeat(resumed)
    assert [(f["data"]["transactionId"], f["data"]["status"]) for f in missed] == [
        (tx["id"], "processing"),
        (tx["id"], "completed"),
    ]
    with stream(api, lastEventId=pending["id"]) as by_query:  # for clients that cannot set headers
        assert [f["id"] for f in until_heartbeat(by_query)] == [f["id"] for f in missed]
    with stream(api, last_event_id=missed[0]["id"], lastEventId=pending["id"]) as both:  # the header is newer
        assert [f["id"] for f in until_heartbeat(both)] == [missed[1]["id"]]
    with stream(api, last_event_id=missed[-1]["id"]) as caught_up:
        assert until_heartbeat(caught_up) == []


def test_another_merchants_resume_replays_none_of_ours(api, other_api):
    tx = push(api)
    settled(api, tx)
    with stream(other_api, last_event_id=0) as theirs:
        assert until_heartbeat(theirs) == []
    with stream(api, last_event_id=0) as mine:
        assert [f["data"]["status"] for f in until_heartbeat(mine)] == ["pending", "processing", "completed"]


def test_heartbeats_arrive_and_the_stream_ends_with_a_retry_hint(app, api):
    app.config.update(EVENTS_HEARTBEAT=0.2, EVENTS_STREAM_LIFETIME=1.5, EVENTS_RETRY=7)
    with stream(api) as events:
        frames = list(events.frames())  # to the stream's end
    assert frames[0] == {"retry": "7000"}
    beats = [f for f in frames if "heartbeat" in f.get("comments", [])]
    assert len(beats) >= 3
    assert frames[-1]["retry"] == "7000" and "reconnect with Last-Event-ID" in frames[-1]["comments"][0]


def test_a_transition_made_outside_the_web_process_reaches_the_stream(app, api, accounts):
    with stream(api) as events:
        with app.app_context():  # as the worker's sweeper would
            p = stk_payment(accounts["merchant"]["id"], "PAYSWEPT1")
            assert transition(p, "timeout", "sweeper", "no result")
            db.session.commit()
            ident = p.id
        frame = events.events_until(lambda f: f["data"]["transactionId"] == ident)[-1]
    assert (frame["event"], frame["data"]["source"], frame["data"]["reference"]) == (
        "payment.timeout",
        "sweeper",
        "PAYSWEPT1",
    )


@pytest.mark.parametrize("bad", ["abc", "-1", "1.5", "²", "1" * 13, "0x10"])
def test_a_bad_last_event_id_is_refused_in_the_envelope(api, bad):
    for answer in (open_stream(api, bad), open_stream(api, lastEventId=bad)):
        assert answer.status_code == 400
        body = answer.json()
        assert body["success"] is False and body["error"] == "VALIDATION_ERROR"
        assert body["errors"][0]["field"] in ("Last-Event-ID", "lastEventId")


def test_streams_beyond_the_cap_are_answered_503_and_a_closed_one_frees_its_place(app, api):
    app.config.update(EVENTS_MAX_STREAMS=2, EVENTS_HEARTBEAT=0.2, EVENTS_RETRY=4)
    first, second = stream(api), stream(api)
    refused = open_stream(api)
    assert refused.status_code == 503
    assert refused.headers["Retry-After"] == "4"
    assert refused.json()["success"] is False and refused.json()["error"] == "STREAMS_UNAVAILABLE"
    assert api.get("/api/transactions").status_code == 200  # ordinary requests still answer
    first.close()  # the server notices at its next heartbeat

    def reopened():
        answer = open_stream(api)
        if answer.status_code == 200:
            return EventStream(answer)
        answer.close()
        return None

    third = wait_for(reopened, what="the closed stream's place")
    third.close()
    second.close()


def test_a_redis_outage_costs_live_events_never_a_payment(app, api, worker):
    with stream(api) as events:
        tx = push(api, phone="254712349999")  # accepted; the simulator never calls back
        processing = events.events_until(of(tx, "processing"))[-1]
    request = sandbox_request(app, tx["checkoutRequestId"])
    body = {
        "Body": {
            "stkCallback": {
                "MerchantRequestID": tx["merchantRequestId"],
                "CheckoutRequestID": tx["checkoutRequestId"],
                "ResultCode": 0,
                "ResultDesc": "The service request is processed successfully.",
                "CallbackMetadata": {
                    "Item": [
                        {"Name": "Amount", "Value": 100},
                        {"Name": "MpesaReceiptNumber", "Value": "UKR1234567"},
                        {"Name": "TransactionDate", "Value": 20261124101010},
                        {"Name": "PhoneNumber", "Value": 254712349999},
                    ]
                },
            }
        }
    }
    with app.app_context():
        assert callback_token(tx["reference"]) in request.callback_url

    with socket.socket() as s:  # a port nobody listens on: Redis is down for the app
        s.bind(("127.0.0.1", 0))
        down = redis_client(f"redis://127.0.0.1:{s.getsockname()[1]}/0")
    worker.pause()
    working = app.extensions["redis"]
    app.extensions["redis"] = down
    try:
        unavailable = open_stream(api)
        assert unavailable.status_code == 503 and unavailable.json()["error"] == "STREAMS_UNAVAILABLE"
        acknowledged = requests.post(request.callback_url, json=body, timeout=30)
        assert acknowledged.status_code == 200 and acknowledged.json()["ResultCode"] == 0
        assert api.get(f"/api/transactions/{tx['id']}").json()["data"]["status"] == "completed"
    finally:
        app.extensions["redis"] = working
        worker.resume()
    with app.app_context():
        assert Callback.query.filter_by(provider_id=tx["checkoutRequestId"]).one().outcome == "applied"

    with stream(api, last_event_id=processing["id"]) as resumed:
        missed = until_heartbeat(resumed)
    assert [(f["data"]["transactionId"], f["data"]["status"]) for f in missed] == [(tx["id"], "completed")]
