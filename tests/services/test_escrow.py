"""Escrow end to end over real HTTP: the live app, its worker, and the Paystack and Daraja
simulators. A bookings payment paid through Paystack is held; a release pays the teacher by a
Paystack transfer or a Daraja B2C, at most what is held and once (concurrent releases too); a
failed transfer fails the release, which can be retried; a refund reverses the held payment; a
payment paid after it was cancelled, or a booking paid twice, is held for refund."""

import json
import threading
from datetime import timedelta

import pytest
import requests

from portal.extensions import db
from portal.models import (
    Callback,
    Escrow,
    Merchant,
    Payment,
    PaymentEvent,
    SandboxB2CPayment,
    SandboxPaystackRecipient,
    SandboxPaystackTransfer,
)
from portal.providers.paystack import signature
from portal.services import escrow
from portal.services.paystack import charges, paystack_for, transfers
from portal.services.transitions import transition
from portal.timeutil import utcnow
from tests.conftest import wait_for
from tests.escrow_support import (
    TEACHER,
    choose_rail,
    held,
    paid,
    payment,
    release,
    row,
    transfers_paid,
    until,
)
from tests.helpers import settled


@pytest.fixture
def merchant(live_server, accounts) -> int:
    return accounts["merchant"]["id"]


def test_a_paid_booking_is_held_once_and_the_sweeper_holds_what_a_lost_job_left(app, merchant):
    payment_id = paid(app, merchant, amount=75000)
    kept = held(app, payment_id)
    assert (kept.booking_id, kept.amount, kept.status, kept.refund_due) == ("booking_1", 75000, "held", False)
    with app.app_context():
        assert escrow.hold(payment_id) == "already held"
        lost = Payment(
            merchant_id=merchant,
            reference="bk-lost-hold-job",
            rail="paystack",
            kind="checkout",
            status="completed",
            amount=20000,
            api="bookings",
            meta={"bookingId": "booking_2"},
            completed_at=utcnow() - timedelta(minutes=5),
        )
        db.session.add(lost)
        db.session.commit()
        lost_id = lost.id
        assert escrow.hold_unheld(utcnow()) == 1
        db.session.commit()
    settled(app)
    assert held(app, lost_id).booking_id == "booking_2"
    with app.app_context():
        assert Escrow.query.count() == 2


def test_a_release_by_paystack_transfer_pays_the_teacher_and_keeps_the_rest(app, merchant):
    escrow_id = held(app, paid(app, merchant, amount=50000)).id
    done = release(app, merchant, amount=42050)
    assert (done.amount, done.kept, done.phone, done.rail) == (42050, 7950, TEACHER, "paystack")
    assert row(app, escrow_id).status == "releasing"
    released = until(app, escrow_id, "released", "failed")
    assert (released.status, released.released_amount, released.payee_phone) == ("released", 42050, TEACHER)
    assert released.released_at is not None and released.attempts == 1 and released.rail == "paystack"
    payout = payment(app, released.payout_id)
    assert (payout.rail, payout.kind, payout.status, payout.amount) == ("paystack", "transfer", "completed", 42050)
    assert payout.reference == done.payout_reference and payout.receipt.startswith("TRF_")
    [sent] = transfers_paid(app, payout.reference)
    assert (sent.amount, sent.status) == (42050, "success")
    with app.app_context():
        recipient = db.session.get(SandboxPaystackRecipient, sent.recipient_id)
        assert (recipient.account_number, recipient.bank_code) == ("0712345678", "MPESA")


def test_a_release_by_mpesa_b2c_pays_whole_shillings_once(app, merchant):
    choose_rail(app, merchant, "mpesa")
    escrow_id = held(app, paid(app, merchant, amount=60000)).id
    with pytest.raises(escrow.BadAmount, match="whole shillings"):
        release(app, merchant, amount=30050)
    with pytest.raises(escrow.BadAmount, match="from 10"):
        release(app, merchant, amount=900)
    assert row(app, escrow_id).status == "held"
    done = release(app, merchant, amount=30000)
    assert done.rail == "mpesa"
    released = until(app, escrow_id, "released", "failed")
    assert (released.status, released.released_amount, released.rail) == ("released", 30000, "mpesa")
    payout = payment(app, released.payout_id)
    assert (payout.rail, payout.kind, payout.status, payout.api) == ("mpesa", "b2c", "completed", "bookings")
    with app.app_context():
        [b2c] = SandboxB2CPayment.query.filter(SandboxB2CPayment.originator_conversation_id.like(f"b2c-{payout.id}-%"))
        assert (b2c.amount, b2c.party_b) == (300, TEACHER)


def test_the_rail_defaults_to_paystack_with_a_key_and_mpesa_without(app, merchant):
    with app.app_context():
        m = db.session.get(Merchant, merchant)
        assert escrow.payout_rail(m) == "paystack"
        escrow.save_payout_rail(m, "mpesa")
        assert escrow.payout_rail(m) == "mpesa"
        escrow.save_payout_rail(m, None)
        m.paystack_secret_key = None
        db.session.commit()
        assert escrow.payout_rail(m) == "mpesa"


def test_more_than_is_held_and_a_second_release_are_refused(app, merchant):
    escrow_id = held(app, paid(app, merchant, amount=50000)).id
    with pytest.raises(escrow.OverHeld, match="more than the KES 500 held"):
        release(app, merchant, amount=50001)
    with pytest.raises(escrow.NothingHeld):
        release(app, merchant, booking="booking_9")
    release(app, merchant, amount=50000)
    with pytest.raises(escrow.AlreadyReleased, match="already being released"):
        release(app, merchant, amount=100)
    until(app, escrow_id, "released")
    with pytest.raises(escrow.AlreadyReleased, match="already released"):
        release(app, merchant, amount=100)
    settled(app)
    with app.app_context():
        assert Payment.query.filter_by(kind="transfer").count() == 1
        assert SandboxPaystackTransfer.query.count() == 1


def test_two_concurrent_releases_make_one_payout(app, merchant):
    escrow_id = held(app, paid(app, merchant, amount=50000)).id
    start, outcomes = threading.Barrier(4), []

    def race():
        start.wait()
        try:
            outcomes.append(release(app, merchant, amount=50000))
        except escrow.AlreadyReleased as exc:
            outcomes.append(exc)

    threads = [threading.Thread(target=race) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    won = [o for o in outcomes if isinstance(o, escrow.Release)]
    assert len(won) == 1 and len(outcomes) == 4, outcomes
    until(app, escrow_id, "released")
    settled(app)
    with app.app_context():
        assert Payment.query.filter_by(kind="transfer").count() == 1
        assert SandboxPaystackTransfer.query.count() == 1
        assert db.session.get(Escrow, escrow_id).attempts == 1


def webhooks_of(app, reference: str) -> list[Callback]:
    with app.app_context():
        rows = Callback.query.filter_by(provider="paystack", provider_id=reference).order_by(Callback.id).all()
        db.session.expunge_all()
        return rows


def test_a_transfer_webhook_delivered_twice_is_applied_once(app, merchant, live_server):
    escrow_id = held(app, paid(app, merchant)).id
    done = release(app, merchant)
    payout_id = until(app, escrow_id, "released").payout_id
    [first] = webhooks_of(app, done.payout_reference)
    assert first.outcome == "applied"
    with app.app_context():
        events_before = PaymentEvent.query.filter_by(payment_id=payout_id).count()
    again = requests.post(
        live_server + "/api/payments/webhook",
        data=bytes(first.raw),
        headers={"Content-Type": "application/json", "x-paystack-signature": first.headers["X-Paystack-Signature"]},
        timeout=10,
    )
    assert again.status_code == 200
    _, second = webhooks_of(app, done.payout_reference)
    assert second.outcome == "duplicate"
    with app.app_context():
        assert PaymentEvent.query.filter_by(payment_id=payout_id).count() == events_before
    assert row(app, escrow_id).status == "released"


def test_a_forged_transfer_webhook_changes_nothing_and_the_sweeper_verifies_the_silent_transfer(
    app, merchant, live_server
):
    escrow_id = held(app, paid(app, merchant)).id
    done = release(app, merchant, phone="254712349999")  # paid, but Paystack's webhook never comes
    payout_id = row(app, escrow_id).payout_id
    wait_for(lambda: payment(app, payout_id).status == "processing", what="Paystack to take the transfer")
    wait_for(lambda: transfers_paid(app, done.payout_reference)[0].status == "success", what="the transfer to pay")
    data = {"reference": done.payout_reference, "amount": 50000, "currency": "KES", "status": "success"}
    body = json.dumps({"event": "transfer.success", "data": {**data, "transfer_code": "TRF_forged", "id": 1}}).encode()
    forged = requests.post(
        live_server + "/api/payments/webhook",
        data=body,
        headers={"Content-Type": "application/json", "x-paystack-signature": signature(body, "sk_test_not_theirs")},
        timeout=10,
    )
    assert forged.status_code == 401
    assert (payment(app, payout_id).status, row(app, escrow_id).status) == ("processing", "releasing")
    app.config["SWEEP_QUERY_AFTER"] = 0.0
    with app.app_context():
        assert transfers.sweep_transfers(utcnow() + timedelta(seconds=1)) == 1
        db.session.commit()
    released = until(app, escrow_id, "released")
    assert payment(app, payout_id).receipt != "TRF_forged"
    assert released.released_amount == 50000


def test_a_failed_transfer_fails_the_release_and_a_retry_pays(app, merchant):
    escrow_id = held(app, paid(app, merchant)).id
    release(app, merchant, phone="254712340001", amount=40000)  # the simulator fails it
    failed = until(app, escrow_id, "failed", "released")
    assert failed.status == "failed" and "could not be credited" in failed.failure
    assert payment(app, failed.payout_id).status == "failed"
    first_payout = failed.payout_id
    done = release(app, merchant, amount=40000)
    released = until(app, escrow_id, "released")
    assert released.attempts == 2 and released.payout_id != first_payout and released.failure is None
    assert [t.status for t in transfers_paid(app, done.payout_reference)] == ["success"]


def test_a_reversed_transfer_fails_the_release(app, merchant):
    escrow_id = held(app, paid(app, merchant)).id
    release(app, merchant, phone="254712340002")
    failed = until(app, escrow_id, "failed", "released")
    assert failed.status == "failed" and "reversed" in failed.failure
    assert payment(app, failed.payout_id).status == "reversed"


def test_a_transfer_whose_answer_was_lost_is_verified_not_sent_twice(app, merchant, worker):
    """Paystack takes the transfer but answers after the client gave up: the next try asks
    Paystack (verify) and finds it, however long it waits."""
    escrow_id = held(app, paid(app, merchant)).id
    worker.pause()
    done = release(app, merchant)
    payout_id = row(app, escrow_id).payout_id
    with app.app_context():  # as if an earlier run had created the recipient and died
        m = db.session.get(Merchant, merchant)
        recipient = paystack_for(m).create_recipient("Teacher", "0712345678")
        p = db.session.get(Payment, payout_id)
        p.meta = {**p.meta, "recipient_code": recipient.recipient_code}
        db.session.commit()
    app.config.update(
        PAYSTACK_TIMEOUT=0.5,
        SANDBOX_FAULT_API_TIMEOUT=1,
        SANDBOX_FAULT_API_HANG=1.5,
        SANDBOX_FAULT_API_PATHS="/sandbox/paystack/transfer",
        JOB_RETRY_BASE=0.1,
        TRANSFER_IN_DOUBT_SECONDS=3.0,
    )
    worker.resume()
    released = until(app, escrow_id, "released", "failed")
    assert released.status == "released"
    assert len(transfers_paid(app, done.payout_reference)) == 1
    assert payment(app, payout_id).attempts == 1


def test_a_refund_reverses_the_held_payment(app, merchant):
    payment_id = paid(app, merchant, amount=30000)
    escrow_id = held(app, payment_id).id
    with app.app_context():
        asked = escrow.refund(db.session.get(Merchant, merchant), escrow_id)
        assert asked.status == "refunded" and asked.refunded_at is not None
    wait_for(lambda: payment(app, payment_id).status == "reversed", timeout=20, what="refund.processed")
    assert row(app, escrow_id).status == "refunded"
    with pytest.raises(escrow.NothingHeld):
        release(app, merchant, amount=100)
    with app.app_context(), pytest.raises(escrow.NotRefundable):
        escrow.refund(db.session.get(Merchant, merchant), escrow_id)


def test_a_refund_whose_webhook_is_lost_is_confirmed_by_the_sweeper(app, merchant):
    from portal.services import sweeper
    from tests.sandbox.support import set_paystack_webhook

    payment_id = paid(app, merchant, amount=30000)
    escrow_id = held(app, payment_id).id
    with app.app_context():
        secret = db.session.get(Merchant, merchant).paystack_secret_key
    set_paystack_webhook(app, secret, None)  # refund.processed never arrives
    with app.app_context():
        escrow.refund(db.session.get(Merchant, merchant), escrow_id)
    with app.app_context():
        client = paystack_for(db.session.get(Merchant, merchant))
        reference = payment(app, payment_id).reference
        wait_for(lambda: client.verify(reference).status == "reversed", what="the simulator to refund")
    settled(app)
    assert payment(app, payment_id).status == "completed"  # nobody told us yet
    app.config["SWEEP_QUERY_AFTER"] = 0.0
    try:
        with app.app_context():
            assert sweeper.sweep()["escrow_refunds"] == 1
    finally:
        app.config["SWEEP_QUERY_AFTER"] = 60.0
    assert payment(app, payment_id).status == "reversed"
    assert row(app, escrow_id).status == "refunded"


def test_a_payment_paid_after_it_was_cancelled_is_held_for_refund(app, merchant):
    payment_id = paid(app, merchant, phone="254722009999")  # paid, but its webhook never comes
    with app.app_context():
        p = db.session.get(Payment, payment_id)
        assert transition(p, "cancelled", "api", "cancelled by the caller", current="processing")
        db.session.commit()
    with app.app_context():
        client = paystack_for(db.session.get(Merchant, merchant))
        reference = payment(app, payment_id).reference
        wait_for(lambda: client.verify(reference).status == "success", what="the simulator to be paid")
        assert charges.verify_now(db.session.get(Payment, payment_id), "sweeper") == "applied"
    kept = held(app, payment_id)
    assert kept.refund_due and "cancelled" in kept.refund_reason, payment(app, payment_id).meta
    with pytest.raises(escrow.RefundDue):
        release(app, merchant)
    with app.app_context():
        escrow.refund(db.session.get(Merchant, merchant), kept.id)
    wait_for(lambda: payment(app, payment_id).status == "reversed", timeout=20, what="the refund")


def test_a_second_payment_for_a_held_booking_is_held_for_refund(app, merchant):
    first = held(app, paid(app, merchant, booking="booking_7"))
    second = held(app, paid(app, merchant, booking="booking_7", amount=20000))
    assert not first.refund_due
    assert second.refund_due
    assert f"already paid by payment {payment(app, first.payment_id).reference}" in second.refund_reason
    done = release(app, merchant, booking="booking_7", amount=50000)  # the first one, not the second
    assert done.escrow_id == first.id


def test_another_merchants_booking_is_not_theirs_to_release(app, merchant, accounts):
    escrow_id = held(app, paid(app, merchant)).id
    with pytest.raises(escrow.NothingHeld):
        release(app, accounts["other_merchant"]["id"])
    with app.app_context(), pytest.raises(escrow.NothingHeld):
        escrow.refund(db.session.get(Merchant, accounts["other_merchant"]["id"]), escrow_id)
    assert row(app, escrow_id).status == "held"


def test_a_refund_paystack_refuses_leaves_the_escrow_held_with_the_reason(app, merchant):
    with app.app_context():  # a payment the Paystack simulator never saw: it answers "Transaction not found"
        unknown = Payment(
            merchant_id=merchant,
            reference="bk-unknown-to-paystack",
            rail="paystack",
            kind="checkout",
            status="completed",
            amount=10000,
            api="bookings",
            meta={"bookingId": "booking_x"},
        )
        db.session.add(unknown)
        db.session.commit()
        assert escrow.hold(unknown.id).startswith("held")
        escrow_id = Escrow.query.filter_by(payment_id=unknown.id).one().id
        with pytest.raises(escrow.RefundRefused, match="Transaction not found"):
            escrow.refund(db.session.get(Merchant, merchant), escrow_id)
    kept = row(app, escrow_id)
    assert kept.status == "held" and kept.refunded_at is None and "Paystack refused the refund" in kept.failure


def test_a_failed_refund_puts_the_escrow_back_to_failed_once(app, merchant, live_server, accounts):
    payment_id = paid(app, merchant)
    escrow_id = held(app, payment_id).id
    with app.app_context():
        db.session.get(Escrow, escrow_id).status = "refunded"  # as a refund asked of Paystack leaves it
        db.session.commit()
    reference = payment(app, payment_id).reference
    body = json.dumps(
        {"event": "refund.failed", "data": {"status": "failed", "transaction_reference": reference, "amount": 50000}}
    ).encode()
    key = accounts["merchant"]["paystack_secret_key"]
    for _ in range(2):
        answer = requests.post(
            live_server + "/api/payments/webhook",
            data=body,
            headers={"Content-Type": "application/json", "x-paystack-signature": signature(body, key)},
            timeout=10,
        )
        assert answer.status_code == 200
    assert [c.outcome for c in webhooks_of(app, reference)][-2:] == ["applied", "duplicate"]
    failed = row(app, escrow_id)
    assert failed.status == "failed" and "could not refund" in failed.failure
    assert payment(app, payment_id).status == "completed"
