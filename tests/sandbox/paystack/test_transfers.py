"""Transfer recipients, transfers and refunds in the Paystack simulator: Paystack's shapes, one
recipient per account, the balance check, outcomes by the recipient's number with their
transfer.* webhooks, and refunds whole or in part with their refund.* webhooks."""

import pytest

from tests.helpers import settled
from tests.sandbox.support import each

WALLET = {"type": "mobile_money", "name": "Jane Wanjiku", "account_number": "0712345678", "bank_code": "MPESA"}


def recipient(paystack, **overrides) -> dict:
    return paystack.ok(paystack.post("/transferrecipient", {**WALLET, "currency": "KES", **overrides}), 201)


def transfer(paystack, code: str, amount: int = 50000, **overrides):
    body = {"source": "balance", "amount": amount, "recipient": code, "currency": "KES", "reason": "Escrow release"}
    return paystack.post("/transfer", {**body, **overrides})


def events(receiver, prefix: str, key: str, value: str) -> list[dict]:
    return [
        b for b in receiver.bodies_at("/paystack/webhook") if b["event"].startswith(prefix) and b["data"][key] == value
    ]


def test_a_recipient_is_created_once_per_account(paystack):
    answer = paystack.post("/transferrecipient", {**WALLET, "currency": "KES"})
    assert answer.status_code == 201 and answer.json()["message"] == "Transfer recipient created successfully"
    made = answer.json()["data"]
    assert made["recipient_code"].startswith("RCP_") and (made["type"], made["currency"]) == ("mobile_money", "KES")
    assert made["details"] == {
        "authorization_code": None,
        "account_number": "0712345678",
        "account_name": "Jane Wanjiku",
        "bank_code": "MPESA",
        "bank_name": "M-PESA",
    }
    assert made["domain"] == "test" and made["is_deleted"] is made["isDeleted"] is False
    for number in ("0712345678", "254712345678", "+254712345678"):  # the same wallet, however written
        assert recipient(paystack, account_number=number)["recipient_code"] == made["recipient_code"]
    till = recipient(paystack, type="mobile_money_business", bank_code="MPTILL", account_number="247247", name="Till")
    assert till["details"]["bank_name"] == "M-PESA Till" and till["recipient_code"] != made["recipient_code"]


@pytest.mark.parametrize(
    "overrides, message",
    [
        ({"type": "nuban"}, "Recipient type is invalid"),
        ({"bank_code": "MPTILL"}, "Bank code MPTILL cannot be used with a mobile_money recipient"),
        ({"account_number": "12345"}, "Account number is invalid: an M-Pesa number such as 0712345678"),
        ({"currency": "NGN"}, "Currency not supported by merchant"),
        ({"name": ""}, "Invalid name"),
    ],
)
def test_recipients_paystack_refuses(paystack, overrides, message):
    answer = paystack.post("/transferrecipient", {**WALLET, **overrides})
    assert answer.status_code == 400 and answer.json()["message"] == message


def test_a_transfer_is_queued_then_succeeds_with_its_webhook(paystack, hooks):
    code = recipient(paystack)["recipient_code"]
    before = paystack.balance()
    answer = transfer(paystack, code, reference="escrow-release-000001")
    assert answer.status_code == 200 and answer.json()["message"] == "Transfer has been queued"
    queued = answer.json()["data"]
    assert (queued["status"], queued["amount"], queued["reference"]) == ("pending", 50000, "escrow-release-000001")
    assert queued["transfer_code"].startswith("TRF_") and isinstance(queued["recipient"], int)
    assert queued["transfersessionid"] == [] and queued["source"] == "balance"
    assert paystack.balance() == before - 50000  # taken at once
    [event] = hooks.wait_at("/paystack/webhook")
    assert event["event"] == "transfer.success"
    data = event["data"]
    assert (data["status"], data["transfer_code"], data["reference"]) == (
        "success",
        queued["transfer_code"],
        queued["reference"],
    )
    assert data["recipient"]["recipient_code"] == code and data["integration"]["business_name"] == "Demo Shop"
    verified = paystack.ok(paystack.get("/transfer/verify/escrow-release-000001"))
    assert verified == data
    assert paystack.balance() == before - 50000


OUTCOMES = [
    ("0712340001", "failed", "transfer.failed"),
    ("0712340002", "reversed", "transfer.reversed"),
    ("0712349999", "success", None),  # paid, the webhook lost
]


def test_transfer_outcomes_by_the_recipients_number(app, paystack, hooks):
    before = paystack.balance()
    references = {}
    for number, *_ in OUTCOMES:
        code = recipient(paystack, account_number=number)["recipient_code"]
        references[number] = transfer(paystack, code, amount=10000).json()["data"]["reference"]

    def check(case):
        number, status, event = case
        settled(app)
        assert paystack.ok(paystack.get(f"/transfer/verify/{references[number]}"))["status"] == status
        sent = events(hooks, "transfer.", "reference", references[number])
        assert [b["event"] for b in sent] == ([event] if event else [])

    each(OUTCOMES, check)
    assert paystack.balance() == before - 10000  # the failed and reversed ones came back


def test_a_transfer_over_the_balance_is_refused_and_takes_nothing(paystack):
    code = recipient(paystack)["recipient_code"]
    before = paystack.balance()
    answer = transfer(paystack, code, amount=before + 100)
    assert answer.status_code == 400 and answer.json()["code"] == "insufficient_balance"
    assert paystack.balance() == before


def test_transfers_paystack_refuses(paystack):
    code = recipient(paystack)["recipient_code"]
    bad_recipient = transfer(paystack, "RCP_doesnotexist")
    assert bad_recipient.status_code == 400 and bad_recipient.json()["code"] == "invalid_transfer_recipient"
    assert bad_recipient.json()["meta"]["nextStep"].startswith("Provide a valid recipient")
    short = transfer(paystack, code, reference="rApY3")  # 16 to 50 lowercase characters
    assert short.status_code == 400 and short.json()["message"] == "Invalid reference"
    assert transfer(paystack, code, reference="payout-0000000001").status_code == 200
    again = transfer(paystack, code, reference="payout-0000000001")
    assert again.status_code == 400 and again.json()["code"] == "duplicate_reference"
    till = recipient(paystack, type="mobile_money_business", bank_code="MPPAYBILL", account_number="888880")
    needs_account = transfer(paystack, till["recipient_code"])
    assert needs_account.status_code == 400 and needs_account.json()["code"] == "missing_params"
    assert transfer(paystack, till["recipient_code"], account_reference="ACC-1").status_code == 200


def paid(paystack, reference: str, amount: int = 100000) -> dict:
    paystack.charge("+254712345678", amount=amount, reference=reference)
    tx = paystack.final(reference)
    assert tx["status"] == "success"
    return tx


def test_a_refund_in_two_parts_reverses_the_transaction(app, paystack, hooks):
    tx = paid(paystack, "refund-me")
    balance = paystack.balance()
    answer = paystack.post("/refund", {"transaction": "refund-me", "amount": 40000, "merchant_note": "Half"})
    assert answer.status_code == 200 and answer.json()["message"] == "Refund has been queued for processing"
    first = answer.json()["data"]
    assert (first["status"], first["amount"], first["transaction"]["reference"]) == ("pending", 40000, "refund-me")
    assert first["merchant_note"] == "Half" and paystack.balance() == balance - 40000
    rest = paystack.ok(paystack.post("/refund", {"transaction": tx["id"]}))  # by id; the rest by default
    assert rest["amount"] == 60000
    settled(app)
    assert paystack.verify("refund-me")["status"] == "reversed"
    kinds = [b["event"] for b in events(hooks, "refund.", "transaction_reference", "refund-me")]
    assert sorted(kinds) == ["refund.pending", "refund.pending", "refund.processed", "refund.processed"]
    over = paystack.post("/refund", {"transaction": "refund-me"})
    assert over.status_code == 400 and over.json()["message"] == "Transaction has been fully reversed"


def test_refunds_paystack_refuses(paystack):
    paid(paystack, "paid-once")
    too_much = paystack.post("/refund", {"transaction": "paid-once", "amount": 100001})
    assert too_much.status_code == 400 and too_much.json()["code"] == "invalid_amount"
    unpaid = paystack.initialize()["reference"]
    not_paid = paystack.post("/refund", {"transaction": unpaid})
    assert not_paid.status_code == 400 and not_paid.json()["message"].startswith("Transaction has not been completed")
    for nobody in ("nope", 1, 4_000_000_000, 10**12):  # by reference, or by an id no transaction has
        unknown = paystack.post("/refund", {"transaction": nobody})
        assert unknown.status_code == 404 and unknown.json() == {"status": False, "message": "Transaction not found"}
