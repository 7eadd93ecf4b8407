"""The real Paystack client (portal/providers/paystack.py) over real HTTP against the simulator on
the live server: every call's typed result, Paystack's refusals as PaystackError, the simulator's
fault switches seen as PaystackUnavailable (and whether the request may have taken effect), the
amounts crossing into subunits only inside the client, and webhook signatures."""

from decimal import Decimal

import pytest

from portal.providers.paystack import (
    LIVE_URL,
    Charge,
    Checkout,
    PaystackClient,
    PaystackError,
    PaystackUnavailable,
    Recipient,
    Transaction,
    Transfer,
    from_subunits,
    international,
    signature,
    to_subunits,
    verify_signature,
)
from portal.services.paystack import paystack_base_url, paystack_for
from tests.conftest import wait_for
from tests.helpers import settled
from tests.sandbox.support import Paystack, Receiver, free_port_url, paystack_keys, set_paystack_webhook


@pytest.fixture
def client(app, accounts, live_server) -> PaystackClient:
    return PaystackClient(paystack_keys(app, accounts)[0], f"{live_server}/sandbox/paystack", timeout=5)


@pytest.fixture
def raw(app, accounts, live_server) -> Paystack:
    """The same integration, spoken to in raw HTTP (to see what the client sent)."""
    return Paystack(live_server, paystack_keys(app, accounts)[0])


@pytest.fixture
def receiver(app, client):
    receiver = Receiver()
    receiver.thread.start()
    set_paystack_webhook(app, client.secret_key, receiver.at("/hook"))
    yield receiver
    receiver.server.shutdown()


# -- amounts ---------------------------------------------------------------------------------------
def test_kes_become_subunits_and_come_back_exactly():
    assert to_subunits(1500) == 150000 and from_subunits(150000) == Decimal("1500.00") == 1500
    assert to_subunits(Decimal("1500.50")) == 150050 and from_subunits(150050) == Decimal("1500.50")
    assert to_subunits(Decimal("0.01")) == 1 and str(from_subunits(1)) == "0.01"
    assert to_subunits(Decimal("1E+3")) == 100000
    for n in (1, 99, 12345, 10**9):
        assert to_subunits(from_subunits(n)) == n


@pytest.mark.parametrize("amount, error", [(1500.0, TypeError), (True, TypeError), ("1500", TypeError)])
def test_an_amount_that_is_not_an_int_or_decimal_is_refused(amount, error):
    with pytest.raises(error):
        to_subunits(amount)


@pytest.mark.parametrize("amount", [Decimal("0.015"), Decimal("NaN"), Decimal("Infinity")])
def test_an_amount_finer_than_a_cent_or_not_a_number_is_refused(amount):
    with pytest.raises(ValueError):
        to_subunits(amount)


def test_the_amount_leaves_the_client_in_subunits(client, raw):
    checkout = client.initialize("jane@example.com", 1500)
    assert raw.verify(checkout.reference)["amount"] == 150000  # on the wire
    assert client.verify(checkout.reference).amount == Decimal("1500.00")


def test_zero_or_negative_amounts_never_leave_the_client(client):
    for amount in (0, -1, Decimal("-0.01")):
        with pytest.raises(ValueError):
            client.initialize("jane@example.com", amount)


# -- transactions ----------------------------------------------------------------------------------
def test_initialize_and_verify(client):
    checkout = client.initialize(
        "jane@example.com",
        Decimal("2500.50"),
        reference="booking-client-1",
        callback_url="https://shop.example/done",
        metadata={"booking": 1},
    )
    assert isinstance(checkout, Checkout) and checkout.reference == "booking-client-1"
    assert checkout.authorization_url.endswith("/sandbox/paystack/checkout/" + checkout.access_code)
    tx = client.verify("booking-client-1")
    assert isinstance(tx, Transaction)
    assert (tx.status, tx.amount, tx.currency, tx.metadata) == ("abandoned", Decimal("2500.50"), "KES", {"booking": 1})
    assert tx.is_final and not tx.succeeded and tx.paid_at is None and tx.customer_email == "jane@example.com"


def test_a_reused_reference_is_a_duplicate_and_an_unknown_one_not_found(client):
    client.initialize("jane@example.com", 100, reference="once-only")
    with pytest.raises(PaystackError) as duplicate:
        client.initialize("jane@example.com", 100, reference="once-only")
    assert duplicate.value.duplicate_reference and duplicate.value.status == 400
    assert duplicate.value.code == "duplicate_reference" and duplicate.value.kind == "validation_error"
    assert duplicate.value.next_step and not duplicate.value.retryable
    with pytest.raises(PaystackError) as missing:
        client.verify("never-made")
    assert missing.value.not_found and missing.value.message == "Transaction reference not found"


def test_a_wrong_key_is_a_final_401(client):
    with pytest.raises(PaystackError) as refused:
        PaystackClient("sk_test_wrong", client.base_url).verify("anything")
    assert refused.value.bad_key and refused.value.message == "Invalid key" and not refused.value.retryable


def test_paystacks_refusal_comes_with_its_message(client):
    with pytest.raises(PaystackError) as refused:
        client.initialize("not-an-email", 100)
    assert refused.value.message == "Invalid Email Address Passed" and refused.value.status == 400


# -- M-Pesa charges ----------------------------------------------------------------------------------
def test_an_mpesa_charge_is_pay_offline_then_verify_shows_success(client, receiver):
    charge = client.charge_mpesa("jane@example.com", 250, "0712 345 678", reference="client-charge-1")
    assert isinstance(charge, Charge)
    assert (charge.status, charge.reference) == ("pay_offline", "client-charge-1") and charge.waiting_on_customer
    assert charge.display_text == "Please complete authorization process on your mobile phone"
    [event] = receiver.wait_at("/hook")
    assert event["event"] == "charge.success"
    tx = client.verify("client-charge-1")
    assert tx.succeeded and (tx.amount, tx.channel, tx.fees) == (Decimal("250.00"), "mobile_money", Decimal("3.75"))
    assert tx.receipt_number and tx.authorization_code.startswith("AUTH_")
    checked = client.check_charge("client-charge-1")
    assert checked.status == "success" and checked.transaction == tx


def test_check_charge_while_the_prompt_is_open_is_pending(app, client):
    app.config["SANDBOX_CALLBACK_DELAY"] = 5.0
    client.charge_mpesa("jane@example.com", 100, "+254712345678", reference="client-pending")
    checked = client.check_charge("client-pending")
    assert (checked.status, checked.transaction) == ("pending", None) and checked.waiting_on_customer


def test_a_cancelled_charge_is_learned_by_verify(client):
    client.charge_mpesa("jane@example.com", 100, "254712341032", reference="client-cancelled")
    tx = wait_for(lambda: (t := client.verify("client-cancelled")).is_final and t, what="the charge to end")
    assert (tx.status, tx.message) == ("failed", "Request cancelled by user")


def test_phone_numbers_are_sent_with_their_plus():
    assert international("0712 345 678") == international("254712345678") == "+254712345678"
    assert international("+254 112 345 678") == "+254112345678"
    with pytest.raises(ValueError):
        international("12345")


# -- transfers, refunds, balance ------------------------------------------------------------------------
def test_a_recipient_then_a_transfer_then_its_verification(app, client, receiver):
    before = client.balance()
    recipient = client.create_recipient("Jane Wanjiku", "0712345678")
    assert isinstance(recipient, Recipient)
    assert (recipient.type, recipient.bank_code, recipient.currency) == ("mobile_money", "MPESA", "KES")
    assert client.create_recipient("Jane Wanjiku", "254712345678").recipient_code == recipient.recipient_code
    queued = client.transfer(Decimal("1200.50"), recipient.recipient_code, "escrow-client-000001", reason="Release")
    assert isinstance(queued, Transfer)
    assert (queued.status, queued.amount, queued.recipient_code) == ("pending", Decimal("1200.50"), None)
    assert not queued.is_final and client.balance() == before - Decimal("1200.50")
    receiver.wait_at("/hook")
    done = client.verify_transfer("escrow-client-000001")
    assert (done.status, done.recipient_code, done.transfer_code) == (
        "success",
        recipient.recipient_code,
        queued.transfer_code,
    )
    assert done.is_final and done.transferred_at


def test_a_refused_transfer_says_why(client):
    with pytest.raises(PaystackError) as refused:
        client.transfer(100, "RCP_nobody", "escrow-client-000002")
    assert (
        refused.value.code == "invalid_transfer_recipient" and refused.value.message == "Recipient specified is invalid"
    )


def test_a_refund_of_part_of_a_paid_charge(app, client, receiver):
    client.charge_mpesa("jane@example.com", 400, "+254712345678", reference="client-refund")
    receiver.wait_at("/hook")
    refund = client.refund("client-refund", Decimal("150.25"), merchant_note="Partial")
    assert (refund.status, refund.amount, refund.transaction_reference) == (
        "pending",
        Decimal("150.25"),
        "client-refund",
    )
    settled(app)
    assert client.verify("client-refund").status == "success"  # part of it is refunded, not all
    client.refund(client.verify("client-refund").id)  # the rest, by id
    settled(app)
    assert client.verify("client-refund").status == "reversed"


# -- the provider failing ---------------------------------------------------------------------------------
PATHS = "/sandbox/paystack"


@pytest.mark.parametrize("bare", [False, True])
def test_a_500_is_unavailable_and_may_have_taken_effect(app, client, bare):
    app.config.update(SANDBOX_FAULT_API_500=1, SANDBOX_FAULT_API_500_BARE=bare, SANDBOX_FAULT_API_PATHS=PATHS)
    with pytest.raises(PaystackUnavailable) as failed:
        client.initialize("jane@example.com", 100, reference="after-500")
    assert failed.value.maybe_sent and failed.value.retryable and "HTTP 500" in str(failed.value)
    assert client.initialize("jane@example.com", 100, reference="after-500").reference == "after-500"


def test_a_timeout_is_unavailable_and_the_request_did_take_effect(app, client):
    app.config.update(SANDBOX_FAULT_API_TIMEOUT=1, SANDBOX_FAULT_API_HANG=1.5, SANDBOX_FAULT_API_PATHS=PATHS)
    slow = PaystackClient(client.secret_key, client.base_url, timeout=0.3)
    with pytest.raises(PaystackUnavailable) as failed:
        slow.initialize("jane@example.com", 100, reference="after-timeout")
    assert failed.value.maybe_sent
    # the way back: verify the reference (sending it again is refused as a duplicate)
    tx = wait_for(lambda: _found(client, "after-timeout"), what="the hung request to take effect")
    assert tx.reference == "after-timeout"
    with pytest.raises(PaystackError) as again:
        client.initialize("jane@example.com", 100, reference="after-timeout")
    assert again.value.duplicate_reference


def _found(client, reference):
    try:
        return client.verify(reference)
    except PaystackError:
        return None


def test_an_unreachable_host_is_unavailable_and_sent_nothing():
    client = PaystackClient("sk_test_x", free_port_url(""), timeout=2)
    with pytest.raises(PaystackUnavailable) as failed:
        client.verify("anything")
    assert not failed.value.maybe_sent


# -- signatures and wiring -----------------------------------------------------------------------------
def test_verify_signature_takes_only_the_exact_bytes_and_key():
    body = b'{"event":"charge.success","data":{"reference":"r1","amount":150000}}'
    header = signature(body, "sk_test_abc")
    assert len(header) == 128 and verify_signature(body, header, "sk_test_abc")
    assert not verify_signature(body.replace(b"150000", b"150001"), header, "sk_test_abc")
    assert not verify_signature(body + b" ", header, "sk_test_abc")
    assert not verify_signature(body, header, "sk_test_abd")
    assert not verify_signature(body, header[:-1], "sk_test_abc")
    assert not verify_signature(body, header, "")


def test_a_merchants_client_goes_to_the_simulator_in_sandbox_mode(app, accounts, live_server):
    from portal.extensions import db
    from portal.models import Merchant
    from portal.services.errors import NotConfigured

    with app.app_context():
        assert paystack_base_url() == live_server + "/sandbox/paystack"
        merchant = db.session.get(Merchant, accounts["merchant"]["id"])
        assert paystack_for(merchant).verify(paystack_for(merchant).initialize("a@example.com", 5).reference)
        app.config["SANDBOX"] = False
        assert paystack_base_url() == LIVE_URL
        app.config["PAYSTACK_BASE_URL"] = "https://paystack.example"
        assert paystack_base_url() == "https://paystack.example"
        merchant.paystack_secret_key = None
        with pytest.raises(NotConfigured):
            paystack_for(merchant)
        db.session.rollback()
