"""Africa's Talking delivery reports through the inbox: stored raw first (any bytes), applied once
to the SMS their messageId names when they came through a URL we handed out, final statuses
never moved, unknown ids kept as orphans and applied once their SMS is recorded; always 200
with an empty body. And end to end: the simulator's reports settle what the rail sent."""

import json
from datetime import timedelta
from urllib.parse import urlencode, urlsplit

import pytest

from portal.extensions import db
from portal.models import Callback, Sms
from portal.services import sms_reports
from portal.services.links import callback_token
from portal.services.sweeper import sweep
from portal.timeutil import utcnow
from tests.conftest import wait_for
from tests.helpers import queue_sms as queue
from tests.helpers import sms_status as status_of
from tests.helpers import stored_sms as stored

PATH = "/api/sms/delivery-reports"
MESSAGE_ID = "ATXid_0123456789abcdef0123456789abcdef"


def sent_sms(merchant_id: int, message_id: str = MESSAGE_ID, status: str = "sent", n: int = 1) -> Sms:
    now = utcnow()
    row = Sms(
        merchant_id=merchant_id,
        to="254711000111",
        message="Your code is 123456",
        purpose="otp",
        dedupe_key=f"otp-{n}-1",
        status=status,
        attempts=1,
        claimed_at=now,
        provider_message_id=message_id if status == "sent" else None,
        provider_status="Success",
        created_at=now - timedelta(seconds=5),
        updated_at=now,
        sent_at=now,
    )
    db.session.add(row)
    db.session.commit()
    return row


def url(merchant_id: int | None = None) -> str:
    """The path and query of a report URL we hand out (the platform's, or a merchant's)."""
    parts = urlsplit(sms_reports.delivery_report_url(merchant_id))
    return f"{parts.path}?{parts.query}"


def report(message_id: str = MESSAGE_ID, status: str = "Success", **extra) -> dict:
    fields = {"id": message_id, "status": status, "phoneNumber": "+254711000111", "networkCode": "99999"}
    return {**fields, "retryCount": "0", **extra}


def post(client, target: str, fields: dict):
    answer = client.post(target, data=urlencode(fields), content_type="application/x-www-form-urlencoded")
    assert (answer.status_code, answer.data) == (200, b"")
    return answer


def outcomes() -> list[str]:
    return [c.outcome for c in Callback.query.order_by(Callback.id)]


@pytest.fixture
def merchant_id(accounts):
    return accounts["merchant"]["id"]


def test_a_report_is_applied_once_and_a_repeat_is_harmless(ctx, client, merchant_id):
    sms = sent_sms(merchant_id)
    for _ in range(2):
        post(client, url(), report())
    db.session.refresh(sms)
    assert (sms.status, sms.provider_status) == ("delivered", "Success") and sms.delivered_at is not None
    assert outcomes() == ["applied", "duplicate"]
    callback = Callback.query.first()
    assert (callback.provider, callback.kind, callback.provider_id) == ("africastalking", "delivery_report", MESSAGE_ID)
    assert callback.merchant_id == merchant_id


def test_a_failed_report_rejects_it_with_its_reason(ctx, client, merchant_id):
    sms = sent_sms(merchant_id)
    post(client, url(merchant_id), report(status="Failed", failureReason="UserIsInactive"))
    db.session.refresh(sms)
    assert (sms.status, sms.provider_status, sms.failure_reason) == ("rejected", "Failed", "UserIsInactive")


def test_reports_on_the_way_are_noted_and_final_ones_never_move(ctx, client, merchant_id):
    sms = sent_sms(merchant_id)
    post(client, url(), report(status="Buffered"))
    db.session.refresh(sms)
    assert (sms.status, sms.provider_status) == ("sent", "Buffered")
    post(client, url(), report(status="Success"))
    post(client, url(), report(status="Failed", failureReason="DeliveryFailure"))  # too late, and contradicting
    post(client, url(), report(status="Submitted"))  # out of order
    db.session.refresh(sms)
    assert (sms.status, sms.provider_status, sms.failure_reason) == ("delivered", "Success", None)
    assert outcomes() == ["applied", "applied", "rejected", "rejected"]


def test_json_reports_are_read_too(ctx, client, merchant_id):
    sms = sent_sms(merchant_id)
    answer = client.post(url(), data=json.dumps(report()), content_type="application/json")
    assert (answer.status_code, answer.data) == (200, b"")
    db.session.refresh(sms)
    assert sms.status == "delivered"


def test_a_report_without_a_valid_token_is_stored_and_not_applied(ctx, client, merchant_id, accounts):
    sms = sent_sms(merchant_id)
    other = accounts["other_merchant"]["id"]
    for target in (PATH, f"{PATH}?ref=AT&token=forged", url(other)):  # the last: another account's URL
        post(client, target, report())
    db.session.refresh(sms)
    assert sms.status == "sent"
    assert outcomes() == ["rejected"] * 3
    assert all(callback_token("AT") not in (c.query_string or "") for c in Callback.query)
    assert all(c.merchant_id == merchant_id for c in Callback.query)


def test_an_unknown_id_is_kept_as_an_orphan_and_applied_once_its_sms_is_sent(ctx, client, merchant_id):
    post(client, url(), report(message_id="ATXid_ffffffffffffffffffffffffffffffff"))
    assert outcomes() == ["orphan"]
    assert Callback.query.one().provider_id == "ATXid_ffffffffffffffffffffffffffffffff"
    sms = sent_sms(merchant_id, message_id="ATXid_ffffffffffffffffffffffffffffffff")
    assert sms_reports.replay_orphans("ATXid_ffffffffffffffffffffffffffffffff") == 1
    db.session.refresh(sms)
    assert sms.status == "delivered" and outcomes() == ["applied"]


def test_the_sweeper_applies_an_orphan_whose_sms_was_recorded_after_it(ctx, client, merchant_id):
    post(client, url(), report(status="Failed"))
    sms = sent_sms(merchant_id)  # the send's own look at orphans came before the report's verdict
    post(client, url(), report(message_id="ATXid_00000000000000000000000000000000"))  # stays an orphan
    assert sweep()["sms_reports_orphaned"] == 1
    db.session.refresh(sms)
    assert sms.status == "rejected" and outcomes() == ["applied", "orphan"]


@pytest.mark.parametrize(
    "raw",
    [
        b"",
        b"\x00\xff\xfe",
        b"id=\x00&status=Success",
        b"id=%FF%FE&status=Success",
        b"id=" + MESSAGE_ID.encode() + b"&status=Succ\xe9s",
        b'{"id": "\\u0000", "status": "Success"}',
        b'{"id": ["x"], "status": {"a": 1}}',
        b"[" * 50_000,
        b"&".join(b"f%d=1" % i for i in range(200)),
    ],
)
def test_any_bytes_are_stored_as_they_came_and_answered_200(ctx, client, merchant_id, raw):
    sms = sent_sms(merchant_id)
    answer = client.post(url(), data=raw, content_type="application/x-www-form-urlencoded")
    assert (answer.status_code, answer.data) == (200, b"")
    callback = Callback.query.one()
    assert bytes(callback.raw) == raw and callback.outcome == "invalid"
    db.session.refresh(sms)
    assert sms.status == "sent"


def test_a_body_over_the_limit_is_refused_unread(ctx, client):
    answer = client.post(url(), data=b"id=" + b"x" * (64 * 1024), content_type="application/x-www-form-urlencoded")
    assert answer.status_code == 413 and Callback.query.count() == 0


# -- end to end, with the simulator's reports ---------------------------------------------------
def test_the_simulators_reports_settle_what_was_sent(app, accounts, live_server):
    with app.app_context():
        app.config["SANDBOX_AT_DELIVERY_REPORT_URL"] = sms_reports.delivery_report_url()
    merchant_id = accounts["merchant"]["id"]
    delivered = queue(app, merchant_id, key="otp-1-1")
    failed = queue(app, merchant_id, to="0711000408", key="otp-2-1")  # the simulator reports it Failed
    wait_for(lambda: status_of(app, delivered) == "delivered", what="the delivery report")
    wait_for(lambda: status_of(app, failed) == "rejected", what="the failure report")
    assert stored(app, failed).failure_reason == "DeliveryFailure"


def test_duplicate_reports_from_the_simulator_are_harmless(app, accounts, live_server):
    with app.app_context():
        app.config.update(SANDBOX_AT_DELIVERY_REPORT_URL=sms_reports.delivery_report_url(accounts["merchant"]["id"]))
    app.config["SANDBOX_CALLBACK_COPIES"] = 2
    sms_id = queue(app, accounts["merchant"]["id"])
    wait_for(lambda: status_of(app, sms_id) == "delivered", what="the delivery report")

    def both_read():
        with app.app_context():
            outcomes = sorted(c.outcome for c in Callback.query)
            return outcomes if len(outcomes) == 2 and "received" not in outcomes else None  # stored and read

    assert wait_for(both_read, what="both copies to be read") == ["applied", "duplicate"]
