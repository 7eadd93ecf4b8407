"""M-Pesa charges in the Paystack simulator: pay_offline, a prompt on the phone, and the outcome
table by the number's ending (DESIGN §6) mapped onto what Paystack answers and sends: only a
success has a webhook, and a 9999 number's never comes."""

from datetime import timedelta

import pytest

from portal.extensions import db
from portal.models import SandboxStkRequest
from portal.providers.paystack import verify_signature
from portal.timeutil import utcnow
from tests.helpers import settled
from tests.sandbox.support import each


def charge_events(receiver, reference: str) -> list[dict]:
    return [
        b
        for b in receiver.bodies_at("/paystack/webhook")
        if b["event"].startswith("charge.") and b["data"]["reference"] == reference
    ]


def test_a_charge_is_pay_offline_then_charge_success_arrives_signed(app, paystack, hooks):
    app.config["SANDBOX_CALLBACK_DELAY"] = 1.0  # the prompt stays open while its pending state is read
    answer = paystack.charge("+254712345678", amount=25000, reference="mpesa-1", metadata={"order": 7})
    assert answer.status_code == 200
    assert answer.json() == {
        "status": True,
        "message": "Charge attempted",
        "data": {
            "reference": "mpesa-1",
            "status": "pay_offline",
            "display_text": "Please complete authorization process on your mobile phone",
        },
    }
    pending = paystack.get("/charge/mpesa-1").json()
    assert pending == {
        "status": True,
        "message": "Reference check successful",
        "data": {"reference": "mpesa-1", "status": "pending"},
    }
    [event] = hooks.wait_at("/paystack/webhook")
    assert set(event) == {"event", "data"} and event["event"] == "charge.success"
    data = event["data"]
    assert (data["reference"], data["status"], data["amount"], data["currency"]) == ("mpesa-1", "success", 25000, "KES")
    assert (data["channel"], data["gateway_response"], data["message"]) == ("mobile_money", "Approved", "madePayment")
    assert data["metadata"] == {"order": 7} and data["paid_at"] and data["paidAt"] == data["paid_at"]
    assert data["authorization"]["channel"] == "mobile_money" and data["authorization"]["last4"] == "X678"
    assert data["fees"] == 375  # 1.5%
    [record] = hooks.at_path("/paystack/webhook")
    assert record["content_type"] == "application/json"
    assert verify_signature(record["raw"], record["headers"]["X-Paystack-Signature"], paystack.key)
    with app.app_context():
        receipt = SandboxStkRequest.query.filter_by(owner="paystack").one().receipt
    assert data["receipt_number"] == receipt  # the M-Pesa receipt of the prompt that paid it
    assert paystack.verify("mpesa-1") == {**data, "status": "success"}
    checked = paystack.get("/charge/mpesa-1").json()
    assert checked["message"] == "Charge attempted" and checked["data"]["status"] == "success"


OUTCOMES = [
    # number ending, status, gateway_response, webhook
    ("254712341032", "failed", "Request cancelled by user", False),
    ("254712341037", "abandoned", "DS timeout user cannot be reached", False),
    ("254712342001", "failed", "The initiator information is invalid.", False),
    ("254712349999", "success", "Approved", False),  # paid, but the webhook is lost
    ("254712345555", "success", "Approved", True),
]


def test_the_outcome_table_by_the_numbers_ending(app, paystack, hooks):
    references = {}
    for number, *_ in OUTCOMES:
        answer = paystack.charge("+" + number, reference=f"suffix-{number[-4:]}")
        assert answer.json()["data"]["status"] == "pay_offline", answer.text
        references[number] = f"suffix-{number[-4:]}"

    def check(case):
        number, status, gateway_response, webhook = case
        tx = paystack.final(references[number])
        assert (tx["status"], tx["gateway_response"]) == (status, gateway_response)
        if status != "success":
            assert tx["message"] == gateway_response and tx["paid_at"] is None  # the reason, for those who verify
        settled(app)
        assert len(charge_events(hooks, references[number])) == (1 if webhook else 0)

    each(OUTCOMES, check)


def test_over_the_sandbox_balance_the_charge_fails_with_no_webhook(app, paystack, hooks):
    app.config["SANDBOX_BALANCE"] = 1000
    paystack.charge("+254712345678", amount=100100, reference="too-much")  # KES 1,001
    tx = paystack.final("too-much")
    assert (tx["status"], tx["gateway_response"]) == ("failed", "The balance is insufficient for the transaction.")
    settled(app)
    assert charge_events(hooks, "too-much") == []


def test_a_success_adds_the_amount_less_fees_to_the_balance(paystack, hooks):
    before = paystack.balance()
    paystack.charge("+254712345678", amount=100000, reference="credit-1")
    hooks.wait_at("/paystack/webhook")
    assert paystack.balance() == before + 100000 - 1500


def test_a_second_charge_while_the_phone_has_a_prompt_open_fails_at_once(app, paystack):
    app.config["SANDBOX_CALLBACK_DELAY"] = 5.0
    assert paystack.charge("+254712345678", reference="first").json()["data"]["status"] == "pay_offline"
    second = paystack.charge("+254712345678", reference="second").json()
    assert second["data"]["status"] == "failed" and "already in process" in second["data"]["message"]
    assert paystack.verify("second")["status"] == "failed"


@pytest.mark.parametrize(
    "phone, amount, message",
    [
        ("254712345678", 10000, "Invalid phone number format"),  # the plus is required
        ("0712345678", 10000, "Invalid phone number format"),
        ("+254712345678", 10050, "Invalid Amount Sent"),  # M-Pesa moves whole shillings
        ("+254712345678", 200, "Invalid Amount Sent"),  # under KES 3
    ],
)
def test_charges_paystack_refuses(paystack, phone, amount, message):
    answer = paystack.charge(phone, amount=amount)
    assert answer.status_code == 400 and answer.json()["message"] == message
    assert answer.json()["type"] == "validation_error"


def test_a_charge_without_mobile_money_or_with_another_provider_is_refused(paystack):
    missing = paystack.post("/charge", {"email": "a@example.com", "amount": 10000})
    assert missing.status_code == 400 and missing.json()["message"] == "mobile_money is required"
    other = paystack.charge(mobile_money={"phone": "+254712345678", "provider": "mtn"})
    assert other.status_code == 400 and other.json()["message"] == "Invalid mobile_money.provider"


def test_verify_settles_a_prompt_whose_job_is_late(app, paystack, hooks):
    """A charge whose prompt's time is up is settled as it is asked about: never pending past it,
    and its webhook still goes out once."""
    worker = app.extensions["background_worker"]
    worker.pause()  # no job answers the prompt
    try:
        paystack.charge("+254712345678", reference="late-job")
        with app.app_context():
            prompt = SandboxStkRequest.query.filter_by(owner="paystack").one()
            prompt.resolve_at = utcnow() - timedelta(seconds=1)  # its time is up
            db.session.commit()
        assert paystack.verify("late-job")["status"] == "success"
    finally:
        worker.resume()
    settled(app)
    assert len(charge_events(hooks, "late-job")) == 1
