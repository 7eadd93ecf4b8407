"""The SMS rail end to end: services.sms.queue in the caller's transaction, the send_sms job over
real HTTP to the Africa's Talking simulator (the message is then visible where the simulator
keeps it), never two messages for one row (a job run twice, two workers at once, a second
queue), retries, dead letters sent again by hand, and the sweeper's re-sends."""

import threading
from datetime import timedelta

import pytest
import requests

from portal import jobs
from portal.extensions import db
from portal.models import DeadLetter, Merchant, Sms
from portal.providers.africastalking import LIVE_URL, SANDBOX_URL
from portal.services import sms as sms_service
from portal.services.errors import NotConfigured
from portal.services.phones import InvalidPhone
from portal.services.sweeper import sweep
from portal.timeutil import utcnow
from tests.conftest import wait_for
from tests.helpers import SMS_TEXT as TEXT
from tests.helpers import queue_sms as queue
from tests.helpers import settled
from tests.helpers import sms_status as status_of
from tests.helpers import stored_sms as stored

PHONE = "254711000111"
AT_PATH = "/sandbox/africastalking/version1"


def sms_row(app, merchant_id: int, **columns) -> int:
    """A committed SMS whose send job was never enqueued (a lost job), as the sweeper finds it."""
    with app.app_context():
        now = utcnow()
        values = {"to": PHONE, "message": TEXT, "purpose": "otp", "dedupe_key": "lost-1", "status": "queued"}
        values.update(created_at=now, updated_at=now, attempts=0)
        row = Sms(merchant_id=merchant_id, **{**values, **columns})
        db.session.add(row)
        db.session.commit()
        return row.id


def kept(live_server: str, number: str = PHONE) -> list[dict]:
    answer = requests.get(f"{live_server}/sandbox/africastalking/messages", params={"to": number}, timeout=10)
    assert answer.status_code == 200, answer.text
    return answer.json()["messages"]


def dead_letters(app) -> list[DeadLetter]:
    with app.app_context():
        rows = DeadLetter.query.filter_by(func="portal.jobs.send_sms").all()
        db.session.expunge_all()
        return rows


def test_a_queued_sms_is_sent_by_its_job_and_kept_by_the_simulator(app, accounts, live_server):
    """The demo merchant has no AT account of its own: in sandbox mode the simulator's is used."""
    sms_id = queue(app, accounts["merchant"]["id"])
    wait_for(lambda: status_of(app, sms_id) == "sent", what="the SMS to be sent")
    (message,) = kept(live_server)
    assert (message["message"], message["to"], message["from"]) == (TEXT, "+" + PHONE, "AFRICASTKNG")
    row = stored(app, sms_id)
    assert (row.to, row.attempts, row.provider_message_id) == (PHONE, 1, message["messageId"])
    assert (row.provider_status, row.cost, row.last_error) == ("Success", "KES 0.8000", None)
    assert row.sent_at is not None and row.purpose == "otp"


def test_the_text_is_encrypted_at_rest(app, accounts, live_server):
    sms_id = queue(app, accounts["merchant"]["id"])
    with app.app_context():
        raw = db.session.execute(db.text("SELECT message FROM sms_messages WHERE id = :i"), {"i": sms_id}).scalar()
    assert "482913" not in raw and stored(app, sms_id).message == TEXT


def test_queueing_again_with_the_same_key_returns_the_first_and_sends_once(app, accounts, live_server):
    merchant = accounts["merchant"]["id"]
    first = queue(app, merchant)
    assert queue(app, merchant, message="another text") == first
    other = queue(app, accounts["other_merchant"]["id"])  # keys are the merchant's own
    assert other != first
    settled(app)
    assert [m["message"] for m in kept(live_server)] == [TEXT, TEXT]  # one per merchant
    assert stored(app, first).message == TEXT


def test_two_callers_queueing_one_key_at_once_make_one_sms(app, accounts, live_server):
    barrier = threading.Barrier(2)
    ids: list[int] = []

    def call():
        barrier.wait()
        ids.append(queue(app, accounts["merchant"]["id"], key="otp-7-1"))

    threads = [threading.Thread(target=call) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    assert len(ids) == 2 and ids[0] == ids[1]
    settled(app)
    assert len(kept(live_server)) == 1


def test_a_queue_rolled_back_with_its_caller_sends_nothing(app, accounts, live_server):
    with app.app_context():
        sms_service.queue(accounts["merchant"]["id"], PHONE, TEXT, purpose="otp", dedupe_key="otp-9-1")
        db.session.rollback()
        assert Sms.query.count() == 0
    settled(app)
    assert kept(live_server) == []


@pytest.mark.parametrize(
    "to, message, purpose, key, error",
    [
        ("12345", TEXT, "otp", "k", InvalidPhone),
        ("+14155552671", TEXT, "otp", "k", InvalidPhone),
        (PHONE, "", "otp", "k", ValueError),
        (PHONE, "x" * 1601, "otp", "k", ValueError),
        (PHONE, TEXT, "One Time Code", "k", ValueError),
        (PHONE, TEXT, "otp", "", ValueError),
        (PHONE, TEXT, "otp", "k\x00", ValueError),
    ],
)
def test_queue_refuses_what_cannot_be_sent(app, accounts, to, message, purpose, key, error):
    with app.app_context(), pytest.raises(error):
        sms_service.queue(accounts["merchant"]["id"], to, message, purpose=purpose, dedupe_key=key)


def test_the_job_run_again_sends_nothing_more(app, accounts, live_server):
    sms_id = queue(app, accounts["merchant"]["id"])
    settled(app)
    with app.app_context():
        assert jobs.send_sms(sms_id) == "not sent: it is sent"
    assert len(kept(live_server)) == 1 and stored(app, sms_id).attempts == 1


def test_two_runs_at_once_send_one_message(app, accounts, live_server):
    sms_id = sms_row(app, accounts["merchant"]["id"])  # no job of its own: only the two runs below
    barrier = threading.Barrier(2)
    outcomes: list[str] = []

    def run():
        with app.app_context():
            barrier.wait()
            outcomes.append(jobs.send_sms(sms_id))
            db.session.remove()

    threads = [threading.Thread(target=run) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    assert len(outcomes) == 2 and sum(o.startswith("sent as") for o in outcomes) == 1, outcomes
    assert len(kept(live_server)) == 1
    row = stored(app, sms_id)
    assert (row.status, row.attempts) == ("sent", 1)


def test_a_failure_worth_retrying_is_retried_and_sent_once(app, accounts, live_server):
    app.config.update(JOB_RETRY_BASE=0.0, SANDBOX_FAULT_API_500=1, SANDBOX_FAULT_API_PATHS=AT_PATH)
    sms_id = queue(app, accounts["merchant"]["id"])
    wait_for(lambda: status_of(app, sms_id) == "sent", what="the retried SMS to be sent")
    row = stored(app, sms_id)
    assert (row.attempts, row.last_error) == (2, None)
    assert len(kept(live_server)) == 1 and dead_letters(app) == []


def test_spent_retries_leave_a_dead_letter_which_sends_it_once_when_retried(app, accounts, api, live_server):
    app.config.update(JOB_RETRIES=1, JOB_RETRY_BASE=0.0, SANDBOX_FAULT_API_500=10**6, SANDBOX_FAULT_API_PATHS=AT_PATH)
    sms_id = queue(app, accounts["merchant"]["id"])
    settled(app)
    row = stored(app, sms_id)
    assert (row.status, row.attempts) == ("failed", 2) and "HTTP 500" in row.last_error
    (letter,) = dead_letters(app)
    assert (letter.args, letter.merchant_id, letter.attempts) == ([sms_id], accounts["merchant"]["id"], 2)
    assert kept(live_server) == []

    app.config.update(SANDBOX_FAULT_API_500=0)  # the provider is back
    answer = api.post(f"/api/dead-letter/{letter.id}/retry")
    assert answer.status_code == 202, answer.text
    wait_for(lambda: status_of(app, sms_id) == "sent", what="the SMS to be sent again by hand")
    settled(app)
    assert [letter.status for letter in dead_letters(app)] == ["resolved"]
    assert api.post(f"/api/dead-letter/{letter.id}/retry").json()["error"] == "ALREADY_RESOLVED"
    settled(app)
    assert len(kept(live_server)) == 1 and stored(app, sms_id).attempts == 3


def test_a_number_that_cannot_receive_fails_with_no_dead_letter(app, accounts, live_server):
    sms_id = queue(app, accounts["merchant"]["id"], to="0711000406")  # opted out (the simulator's suffix)
    settled(app)
    row = stored(app, sms_id)
    assert (row.status, row.attempts, row.provider_status) == ("failed", 1, "UserInBlacklist")
    assert "406" in row.last_error and dead_letters(app) == []


def test_refused_credentials_fail_at_once_and_the_retry_sends_once_fixed(app, accounts, api, live_server):
    merchant_id = accounts["merchant"]["id"]
    with app.app_context():
        merchant = db.session.get(Merchant, merchant_id)
        merchant.at_username, merchant.at_api_key = "sandbox", "a-key-from-another-app"
        db.session.commit()
    sms_id = queue(app, merchant_id)
    settled(app)
    row = stored(app, sms_id)
    assert (row.status, row.attempts) == ("failed", 1)  # no retry: retrying cannot fix a key
    (letter,) = dead_letters(app)
    assert letter.error_type == "AtAuthError" and "The supplied authentication is invalid" in letter.error

    with app.app_context():  # the merchant corrects its settings
        db.session.get(Merchant, merchant_id).at_api_key = app.config["SANDBOX_AT_API_KEY"]
        db.session.commit()
    assert api.post(f"/api/dead-letter/{letter.id}/retry").status_code == 202
    wait_for(lambda: status_of(app, sms_id) == "sent", what="the SMS to be sent with the corrected key")
    assert len(kept(live_server)) == 1


def test_a_merchants_own_account_and_sender_id_are_used(app, accounts, live_server):
    merchant_id = accounts["merchant"]["id"]
    with app.app_context():
        merchant = db.session.get(Merchant, merchant_id)
        merchant.at_username, merchant.at_api_key = "sandbox", app.config["SANDBOX_AT_API_KEY"]
        merchant.at_sender_id = "DEMO-SHOP"
        db.session.commit()
    sms_id = queue(app, merchant_id)
    wait_for(lambda: status_of(app, sms_id) == "sent", what="the SMS to be sent")
    assert kept(live_server)[0]["from"] == "DEMO-SHOP"


def test_the_account_and_host_an_sms_goes_out_with(app, accounts):
    with app.app_context():
        merchant = db.session.get(Merchant, accounts["merchant"]["id"])
        client, sender = sms_service.client_for(merchant)
        assert (client.username, client.api_key, sender) == ("sandbox", app.config["SANDBOX_AT_API_KEY"], None)
        assert client.base_url == app.config["PUBLIC_BASE_URL"] + "/sandbox/africastalking"
        app.config.update(AT_USERNAME="platform", AT_API_KEY="platform-key", AT_SENDER_ID="WATER")
        client, sender = sms_service.client_for(merchant)  # the platform's account comes first
        assert (client.username, client.api_key, sender) == ("platform", "platform-key", "WATER")
        app.config.update(SANDBOX=False)
        assert sms_service.client_for(merchant)[0].base_url == LIVE_URL
        merchant.at_username, merchant.at_api_key, merchant.at_sender_id = "sandbox", "own-key", "SHOP"
        client, sender = sms_service.client_for(merchant)  # the merchant's own comes before both
        assert (client.username, client.api_key, client.base_url, sender) == ("sandbox", "own-key", SANDBOX_URL, "SHOP")
        app.config.update(AT_BASE_URL="https://at.example.com")
        assert sms_service.client_for(merchant)[0].base_url == "https://at.example.com"
        merchant.at_username = merchant.at_api_key = None
        app.config.update(AT_USERNAME="", AT_API_KEY="")
        with pytest.raises(NotConfigured):
            sms_service.client_for(merchant)
        db.session.rollback()


def test_the_sweeper_sends_an_sms_whose_job_was_lost(app, accounts, live_server):
    merchant = accounts["merchant"]["id"]
    lost = sms_row(app, merchant, updated_at=utcnow() - timedelta(minutes=2))
    waiting = sms_row(app, merchant, dedupe_key="lost-2", to="254711000222")  # queued a moment ago: its job is due
    with app.app_context():
        assert sweep()["sms_unsent"] == 1
    wait_for(lambda: status_of(app, lost) == "sent", what="the lost SMS to be sent")
    settled(app)
    assert status_of(app, waiting) == "queued" and len(kept(live_server)) == 1


def test_the_sweeper_sends_again_an_sms_whose_worker_died_mid_send(app, accounts, live_server):
    """At least once: a claim older than SMS_CLAIM_TIMEOUT is a worker that died, maybe after AT
    took the message; it is sent again. A younger claim is a worker still sending: left alone."""
    merchant = accounts["merchant"]["id"]
    long_ago = utcnow() - timedelta(seconds=app.config["SMS_CLAIM_TIMEOUT"] + 5)
    dead = sms_row(app, merchant, status="sending", attempts=1, claimed_at=long_ago, updated_at=long_ago)
    busy = sms_row(app, merchant, status="sending", attempts=1, claimed_at=utcnow(), dedupe_key="busy")
    with app.app_context():
        assert sweep()["sms_unsent"] == 1
        assert jobs.send_sms(busy) == "not sent: it is sending"  # a stray job cannot take it either
    wait_for(lambda: status_of(app, dead) == "sent", what="the SMS of the dead worker to be sent again")
    assert stored(app, dead).attempts == 2 and status_of(app, busy) == "sending"
