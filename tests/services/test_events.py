"""Publishing payment events: after commit only, all of a transaction's events, each carrying
its stored event's id and the payment's facts; a Redis failure never costs the commit."""

import logging
import socket
import uuid

import redis

from portal.extensions import db
from portal.models import Payment, PaymentEvent
from portal.queueing import redis_client
from portal.services import events
from portal.services.transitions import create_payment, transition
from tests.helpers import stk_payment


def test_a_transactions_events_are_published_after_its_commit_and_a_rollbacks_never(ctx, app, accounts):
    merchant_id = accounts["merchant"]["id"]
    subscription = events.Subscription(app.extensions["redis"], merchant_id)
    try:
        doomed = stk_payment(merchant_id, "PAYEVDOOMED")
        assert transition(doomed, "completed", "test")
        db.session.rollback()

        p = create_payment(
            "api",
            "created",
            merchant_id=merchant_id,
            reference="PAYEVKEPT",
            rail="mpesa",
            kind="stk_push",
            status="pending",
            amount=12345,
            currency="KES",
            phone="254708374149",
            api="gateway",
            meta={},
        )
        assert transition(p, "processing", "api") and transition(p, "completed", "callback")
        db.session.commit()
        # Redis delivers in the order published: the rolled-back event would have come first
        got = [subscription.next(5) for _ in range(3)]
    finally:
        subscription.close()
    stored = PaymentEvent.query.filter_by(payment_id=p.id).order_by(PaymentEvent.id).all()
    assert [e.id for e in got] == [e.id for e in stored]
    assert [(e.from_status, e.to_status, e.source) for e in got] == [
        (None, "pending", "api"),
        ("pending", "processing", "api"),
        ("processing", "completed", "callback"),
    ]
    assert {(e.payment_id, e.merchant_id, e.reference, e.kind, e.amount, e.currency) for e in got} == {
        (p.id, merchant_id, "PAYEVKEPT", "stk_push", 12345, "KES")
    }
    assert [e.at for e in got] == [e.created_at for e in stored]
    assert db.session.get(Payment, doomed.id).status == "processing"


def test_a_rolled_back_savepoint_takes_back_its_events_and_no_others(ctx, app, accounts):
    merchant_id = accounts["merchant"]["id"]
    kept, undone = stk_payment(merchant_id, "PAYEVKEPT"), stk_payment(merchant_id, "PAYEVUNDONE")
    subscription = events.Subscription(app.extensions["redis"], merchant_id)
    try:
        assert transition(kept, "timeout", "test")
        savepoint = db.session.begin_nested()
        assert transition(undone, "timeout", "test")
        savepoint.rollback()
        assert transition(kept, "completed", "test")
        db.session.commit()
        marker = stk_payment(merchant_id, "PAYEVMARKER")
        assert transition(marker, "completed", "test")
        db.session.commit()
        got = [subscription.next(5) for _ in range(3)]
    finally:
        subscription.close()
    assert [(e.reference, e.to_status) for e in got] == [
        ("PAYEVKEPT", "timeout"),
        ("PAYEVKEPT", "completed"),
        ("PAYEVMARKER", "completed"),
    ]
    assert db.session.get(Payment, undone.id).status == "processing"


def test_installations_in_other_redis_databases_never_hear_each_other(ctx, app, accounts):
    merchant_id = accounts["merchant"]["id"]
    here = app.extensions["redis"]
    kwargs = here.connection_pool.connection_kwargs
    elsewhere = redis.Redis(host=kwargs["host"], port=kwargs["port"], db=(kwargs.get("db", 0) + 1) % 16)
    private = f"test-marker-{uuid.uuid4()}"  # a channel of this test's own: nobody else is disturbed
    theirs = elsewhere.pubsub()
    try:
        theirs.subscribe(events.channel(elsewhere, merchant_id), private)  # the same merchant id, elsewhere
        confirmed = 0
        while confirmed < 2:
            confirmed += theirs.get_message(timeout=5)["type"] == "subscribe"
        reference = f"PAYEV{uuid.uuid4().hex[:12].upper()}"  # ours alone: the other test run may be that installation
        p = stk_payment(merchant_id, reference)
        assert transition(p, "completed", "callback")
        db.session.commit()
        here.publish(private, "after ours")
        # one connection's messages come in the order published: ours would have come before the
        # marker. Whatever else comes first is that installation's own (the side-by-side test run).
        heard = []
        while (message := theirs.get_message(timeout=5)) is not None and message["channel"].decode() != private:
            heard.append(message["data"].decode())
        assert message is not None, "the marker never came"
        assert not [data for data in heard if reference in data]
    finally:
        theirs.close()


def test_the_stored_events_replay_the_merchants_own_only(ctx, accounts):
    mine = stk_payment(accounts["merchant"]["id"], "PAYEVMINE")
    theirs = stk_payment(accounts["other_merchant"]["id"], "PAYEVTHEIRS")
    for p in (mine, theirs):
        assert transition(p, "completed", "callback")
    db.session.commit()
    replayed = events.stored_after(accounts["merchant"]["id"], 0)
    assert [(e.reference, e.to_status) for e in replayed] == [("PAYEVMINE", "completed")]
    assert events.stored_after(accounts["merchant"]["id"], replayed[0].id) == []


def test_a_redis_failure_never_costs_the_commit(ctx, app, accounts, caplog):
    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        down = redis_client(f"redis://127.0.0.1:{s.getsockname()[1]}/0")
    p = stk_payment(accounts["merchant"]["id"], "PAYEVDOWN")
    working, app.extensions["redis"] = app.extensions["redis"], down
    try:
        with caplog.at_level(logging.WARNING, logger="portal.services.events"):
            assert transition(p, "completed", "callback")
            db.session.commit()
    finally:
        app.extensions["redis"] = working
    db.session.expire_all()
    assert db.session.get(Payment, p.id).status == "completed"
    assert "could not publish payment events" in caplog.text
