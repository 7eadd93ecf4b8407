"""The gateway's B2C end to end over real HTTP: live app, worker, Daraja simulator. A payout is
queued, sent and settled by M-Pesa's result; a lost result or a queue timeout is settled by
Transaction Status; a send whose answer never came is asked about before it is retried, and
M-Pesa pays each payout once."""

import pytest

from portal.extensions import db
from portal.models import Payment, SandboxB2CPayment, SandboxStatusQuery
from portal.services.sweeper import sweep
from tests.conftest import wait_for
from tests.helpers import settled

B2C_PATH = "/sandbox/daraja/mpesa/b2c"


def pay_out(api, phone="254712345678", amount=100, **extra):
    return api.post("/api/mpesa/b2c", json={"phoneNumber": phone, "amount": amount, "remarks": "Refund", **extra})


def queued(api, phone, amount=100) -> dict:
    answer = pay_out(api, phone=phone, amount=amount)
    assert answer.status_code == 202, answer.text
    tx = answer.json()["data"]
    assert (tx["type"], tx["status"], tx["amount"], tx["phoneNumber"]) == ("B2C", "queued", amount, phone)
    return tx


def final(api, ident: int, timeout: float = 30.0) -> dict:
    def done():
        tx = api.get(f"/api/transactions/{ident}").json()["data"]
        return tx if tx["status"] in ("completed", "failed") else None

    return wait_for(done, timeout=timeout, what=f"payout {ident} to settle")


def paid_by_mpesa(app, ident: int) -> list[SandboxB2CPayment]:
    """What the simulator paid out for the payout: one row per attempt that reached it."""
    with app.app_context():
        rows = SandboxB2CPayment.query.filter(SandboxB2CPayment.originator_conversation_id.like(f"b2c-{ident}-%")).all()
        db.session.expunge_all()
        return rows


def status_queries(app, ident: int) -> int:
    with app.app_context():
        query = SandboxStatusQuery.query.filter(SandboxStatusQuery.original_conversation_id.like(f"b2c-{ident}-%"))
        return query.count()


def test_a_payout_is_queued_then_completed_with_its_receipt(app, api):
    tx = queued(api, "254712345678", amount=150)
    done = final(api, tx["id"])
    assert done["status"] == "completed" and done["resultCode"] == "0" and done["mpesaReceiptNumber"]
    [paid] = paid_by_mpesa(app, tx["id"])
    assert (paid.amount, paid.party_b, paid.result_code) == (150, "254712345678", "0")
    assert paid.transaction_id == done["mpesaReceiptNumber"]


def test_insufficient_funds_fails_the_payout_with_result_code_1(app, api):
    tx = queued(api, "254712340001")
    done = final(api, tx["id"])
    assert (done["status"], done["resultCode"]) == ("failed", "1")
    assert "balance is insufficient" in done["resultDesc"] and not done["mpesaReceiptNumber"]


def test_a_lost_result_is_settled_by_the_sweepers_transaction_status_and_paid_once(app, api):
    tx = queued(api, "254712349999")
    with app.app_context():
        wait_for(lambda: db.session.get(Payment, tx["id"]).status == "processing", what="M-Pesa to take it")
        db.session.remove()
    settled(app)  # the simulator has paid it and told nobody
    assert api.get(f"/api/transactions/{tx['id']}").json()["data"]["status"] == "sent"

    app.config["SWEEP_QUERY_AFTER"] = 0
    with app.app_context():
        assert sweep()["payouts_silent"] == 1
        db.session.remove()
    done = final(api, tx["id"])
    assert done["status"] == "completed" and done["mpesaReceiptNumber"]
    [paid] = paid_by_mpesa(app, tx["id"])
    assert paid.transaction_id == done["mpesaReceiptNumber"]
    assert status_queries(app, tx["id"]) == 1


def test_a_queue_timeout_is_not_a_failure_transaction_status_settles_it(app, api):
    tx = queued(api, "254712349998")
    done = final(api, tx["id"])
    assert done["status"] == "completed" and done["mpesaReceiptNumber"]
    assert len(paid_by_mpesa(app, tx["id"])) == 1 and status_queries(app, tx["id"]) == 1


def test_a_send_whose_answer_timed_out_is_asked_about_before_a_retry_and_paid_once(app, api):
    app.config.update(
        DARAJA_TIMEOUT=1.0,
        SANDBOX_FAULT_API_TIMEOUT=1,
        SANDBOX_FAULT_API_HANG=1.5,  # M-Pesa takes the request after we stopped waiting
        SANDBOX_FAULT_API_PATHS=B2C_PATH,
        JOB_RETRY_BASE=2.0,
    )
    tx = queued(api, "254712349999", amount=120)  # its result is lost: only Transaction Status tells
    done = final(api, tx["id"])
    assert done["status"] == "completed" and done["mpesaReceiptNumber"]
    settled(app)
    [paid] = paid_by_mpesa(app, tx["id"])  # the first attempt, found by Transaction Status
    assert paid.originator_conversation_id == f"b2c-{tx['id']}-1"
    assert status_queries(app, tx["id"]) == 1
    with app.app_context():
        assert db.session.get(Payment, tx["id"]).attempts == 1  # no second attempt was sent


def test_a_send_still_hanging_when_the_retry_asks_is_not_paid_twice(app, api):
    """M-Pesa takes the timed-out request only after the retry's Transaction Status said it
    knows no such payout: the retry must not pay again."""
    app.config.update(
        DARAJA_TIMEOUT=1.0,
        SANDBOX_FAULT_API_TIMEOUT=1,
        SANDBOX_FAULT_API_HANG=5.0,
        SANDBOX_FAULT_API_PATHS=B2C_PATH,
        JOB_RETRY_BASE=0.5,  # the retry asks while the first attempt still hangs
        B2C_IN_DOUBT_SECONDS=8.0,  # longer than the hang: "no such transaction" is asked again
    )
    tx = queued(api, "254712345678", amount=130)
    final(api, tx["id"])
    settled(app)
    first = f"b2c-{tx['id']}-1"
    wait_for(
        lambda: any(p.originator_conversation_id == first for p in paid_by_mpesa(app, tx["id"])),
        timeout=20,
        what="the hung first attempt to reach M-Pesa",
    )
    settled(app)
    paid = [p for p in paid_by_mpesa(app, tx["id"]) if p.result_code == "0"]
    assert len(paid) == 1, [(p.originator_conversation_id, p.result_code) for p in paid]
    with app.app_context():
        assert db.session.get(Payment, tx["id"]).status == "completed"


@pytest.mark.parametrize("bare", [True, False], ids=["a proxy's bare 500", "Daraja's 500.003.1001"])
def test_a_send_answered_with_a_server_error_is_found_never_made_and_sent_again_once(app, api, bare):
    app.config.update(
        SANDBOX_FAULT_API_500=1,  # a 500 before M-Pesa took it: nobody knows that yet
        SANDBOX_FAULT_API_500_BARE=bare,
        SANDBOX_FAULT_API_PATHS=B2C_PATH,
        JOB_RETRY_BASE=0.5,
        B2C_IN_DOUBT_SECONDS=1.0,
    )
    tx = queued(api, "254712345678", amount=140)
    done = final(api, tx["id"])
    assert done["status"] == "completed" and done["mpesaReceiptNumber"]
    settled(app)
    [paid] = paid_by_mpesa(app, tx["id"])  # only the second attempt reached M-Pesa
    assert paid.originator_conversation_id == f"b2c-{tx['id']}-2"
    assert status_queries(app, tx["id"]) >= 1  # asked before sending again
    with app.app_context():
        assert db.session.get(Payment, tx["id"]).attempts == 2
