"""The Paystack simulator's M-Pesa charges (POST /charge with mobile_money, provider mpesa): an
STK prompt on the customer's phone, opened through the Daraja simulator's prompt machinery (the
virtual phone shows it; nobody holding the phone, the number's ending decides, DESIGN §6), and
answered `pay_offline`. When the prompt closes, `settle` ends the transaction as Paystack would:

| prompt result | transaction | webhook |
|---|---|---|
| 0 paid | success, gateway_response "Approved" | charge.success |
| paid, on a number ending 9999 | success | none ever (the lost webhook) |
| 1 balance, 1032 cancelled, 2001 wrong PIN | failed, M-Pesa's reason in message | none (Paystack sends none) |
| 1037 unreachable, or left alone | abandoned | none |
"""

from portal.extensions import db
from portal.models import SandboxPaystackIntegration, SandboxPaystackTransaction, SandboxStkRequest
from portal.sandbox.daraja import stk
from portal.sandbox.paystack import errors, shapes, transactions
from portal.sandbox.paystack.schemas import ChargeRequest
from portal.timeutil import utcnow

OWNER = "paystack"  # the prompts' owner name (app.extensions["stk_owners"])
SHORTCODE = stk.PUBLIC_SHORTCODE  # Paystack's M-Pesa paybill, in the sandbox the public test one
DISPLAY_TEXT = "Please complete authorization process on your mobile phone"
ABANDONED_CODES = {stk.TIMED_OUT}


def charge(asked: ChargeRequest, integration: SandboxPaystackIntegration, ip: str | None) -> dict:
    """Records the charge and prompts the phone; the answer's `data` (pay_offline, or failed at
    once when the subscriber already has a prompt open)."""
    transactions.check_amount(asked.amount)
    if asked.amount % 100:  # M-Pesa moves whole shillings
        raise errors.invalid_amount()
    phone = asked.mobile_money.phone
    tx = transactions.insert(
        integration,
        asked.reference or shapes.code(15),
        amount=asked.amount,
        currency=asked.currency or transactions.KES,
        email=asked.email,
        status="pending",
        channel="mobile_money",
        phone=phone,
        metadata_json=transactions.stored_metadata(asked.metadata),
        ip_address=ip,
    )
    try:
        stk.open_prompt(
            phone=phone.removeprefix("+"),
            amount=asked.amount // 100,
            shortcode=SHORTCODE,
            account_reference=tx.reference[:12],
            description="Paystack",
            callback_url="",
            business_name=integration.business_name,
            owner=OWNER,
            owner_id=tx.id,
        )
    except stk.SubscriberBusy:
        reason = "Unable to lock subscriber, a transaction is already in process for the current subscriber"
        transactions.finish(tx, "failed", reason, reason, channel="mobile_money")
        return {"reference": tx.reference, "status": "failed", "message": reason}
    return {"reference": tx.reference, "status": "pay_offline", "display_text": DISPLAY_TEXT}


def outcome(result_code: int, result_desc: str | None) -> tuple[str, str, str | None]:
    """(status, gateway_response, message) for a prompt's M-Pesa result."""
    if result_code == 0:
        return "success", "Approved", "madePayment"
    reason = result_desc or "Request failed"
    return ("abandoned" if result_code in ABANDONED_CODES else "failed"), reason, reason


def settle(req: SandboxStkRequest) -> str:
    """Ends the transaction a closed prompt was opened for (registered as the prompts' owner);
    safe to run twice: only the first ends it."""
    tx = db.session.get(SandboxPaystackTransaction, req.owner_id)
    if tx is None:
        return "gone"
    status, gateway_response, message = outcome(req.result_code, req.result_desc)
    ended = transactions.finish(
        tx,
        status,
        gateway_response,
        message,
        channel="mobile_money",
        authorization=shapes.mobile_money_authorization(tx.phone),
        receipt=req.receipt,
        send_webhook=req.send_callback,
    )
    return f"paystack charge {status}" if ended else "already settled"


def catch_up(tx: SandboxPaystackTransaction) -> SandboxPaystackTransaction:
    """A charge whose prompt's time is up but whose job is late is settled as it is asked about,
    so verify never says pending past the prompt's time."""
    if tx.status != "pending":
        return tx
    req = SandboxStkRequest.query.filter_by(owner=OWNER, owner_id=tx.id).first()
    if req is None:
        return tx
    if req.is_open and req.resolve_at <= utcnow():
        stk.resolve(req)
    if not req.is_open:
        settle(req)
    return tx


def register(app) -> None:
    app.extensions.setdefault("stk_owners", {})[OWNER] = settle
