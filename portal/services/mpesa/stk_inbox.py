"""Reading Daraja's STK callbacks from the inbox, and replaying those that came too early.

A callback is applied as sent only when it came through the URL we handed out for that
payment (a valid token for its reference), from an allowed address, and matches the
payment (amount and phone). Anything else only makes us ask Daraja (STK query).
"""

import json
import re
from decimal import Decimal, InvalidOperation

from sqlalchemy import update

from portal.extensions import db
from portal.models import Payment, PaymentStatus
from portal.services import inbox
from portal.services.mpesa.client import source_problem
from portal.services.mpesa.stk import (
    PaymentState,
    StkResult,
    apply_stk_result,
    ask_daraja,
    state_by_checkout_id,
    state_of_unacknowledged,
    status_for_result,
)

S = PaymentStatus
PROVIDER_ID = re.compile(r"[\x21-\x7e]{1,64}")  # printable ASCII: what Daraja's ids are made of
RECEIPT = re.compile(r"[A-Z0-9]{1,32}")
REFERENCE = re.compile(r"[A-Za-z0-9-]{1,40}")  # PAY0123ABCD..., or a dialect's own (PKG-20260128150605-abc123)


class Malformed(ValueError):
    pass


@inbox.interpreter("daraja", "stk")
def interpret(item: inbox.Item) -> inbox.Verdict:
    try:
        stk = parse_stk(item.raw)
    except Malformed as exc:
        return inbox.Verdict("invalid", str(exc))
    checkout_id = stk["CheckoutRequestID"]
    ref = item.args.get("ref")
    ref = ref if isinstance(ref, str) and REFERENCE.fullmatch(ref) else None

    state = state_by_checkout_id(checkout_id)
    if state is None and ref:
        state = state_of_unacknowledged(ref)
    if state is None:
        return inbox.Verdict("orphan", "no payment has this CheckoutRequestID", provider_id=checkout_id)
    found = {"provider_id": checkout_id, "payment_id": state.id, "merchant_id": state.merchant_id}

    problem = _trust_problem(item, state, ref, stk)
    if problem:
        if state.checkout_request_id:
            ask_daraja(state.id)
        return inbox.Verdict(
            "rejected", f"{problem}; not applied as sent, asking M-Pesa for the result", status=state.status, **found
        )

    if state.checkout_request_id is None:
        if state.status == S.PENDING:
            return inbox.Verdict(
                "orphan", "arrived before M-Pesa's acknowledgement was stored", status=state.status, **found
            )
        _adopt(state.id, checkout_id)  # the push timed out, but it reached the phone

    result = StkResult(
        _code(stk["ResultCode"]),
        _text(stk.get("ResultDesc")),
        _match(RECEIPT, _item(stk, "MpesaReceiptNumber")),
        _date(_item(stk, "TransactionDate")),
    )
    outcome = apply_stk_result(state, result, source="callback", current=state.status)
    if outcome == "applied":
        return inbox.Verdict("applied", f"payment is now {_after(result)}", status=_after(result), **found)
    if outcome == "duplicate":
        return inbox.Verdict("duplicate", "already applied", status=_after(result), **found)
    if outcome == "unconfirmed":
        ask_daraja(state.id)
        return inbox.Verdict(
            "rejected",
            f"a success for a payment already {state.status}: applied only when "
            "M-Pesa confirms it, asking M-Pesa (STK query)",
            status=state.status,
            **found,
        )
    return inbox.Verdict("rejected", f"payment is already {state.status}; result ignored", status=state.status, **found)


def orphans_of(checkout_request_id: str) -> list[int]:
    """Callbacks stored before their payment knew this CheckoutRequestID (nearly always none).
    A callback whose verdict commits after this look is found by the sweeper's STK query."""
    return inbox.orphans("daraja", "stk", checkout_request_id)


replay = inbox.replay  # re-reads those callbacks, now that their payment can be found


def _after(result: StkResult) -> str:
    return status_for_result(result.result_code)


def _adopt(payment_id: int, checkout_id: str) -> None:
    db.session.execute(
        update(Payment)
        .where(Payment.id == payment_id, Payment.checkout_request_id.is_(None))
        .values(checkout_request_id=checkout_id)
        .execution_options(synchronize_session=False)
    )


def _trust_problem(item: inbox.Item, state: PaymentState, ref: str | None, stk: dict) -> str | None:
    problem = source_problem(item.source_ip)
    if problem:
        return problem
    if not (item.token_valid and ref == state.reference):
        return "no valid callback token"
    if _code(stk["ResultCode"]) == "0":
        amount, phone = _item(stk, "Amount"), _item(stk, "PhoneNumber")
        try:
            paid = Decimal(str(amount)) * 100
            matches = paid.is_finite() and paid == state.amount
        except (InvalidOperation, ValueError):
            return "the amount is unreadable"
        if not matches:
            return f"amount {_text(str(amount))[:20]} does not match the payment's"
        if phone is None:
            return "a success without the customer's phone"
        if isinstance(phone, bool) or str(phone) != state.phone:
            return "phone does not match the payment's"
    return None


def _reject_constant(name: str):
    raise Malformed(f"not JSON: {name} is not a number")


def parse_stk(raw: bytes) -> dict:
    """Body.stkCallback with a printable CheckoutRequestID and a ResultCode, or Malformed."""
    try:
        data = json.loads(raw, parse_constant=_reject_constant)
    except RecursionError:
        raise Malformed("JSON nested too deeply") from None
    except ValueError as exc:  # includes invalid UTF-8 and Malformed itself
        raise Malformed(str(exc) if isinstance(exc, Malformed) else "not JSON") from None
    try:
        stk = data["Body"]["stkCallback"]
        checkout_id = stk["CheckoutRequestID"]
        code = stk["ResultCode"]
    except (KeyError, TypeError):
        raise Malformed("not an STK callback (Body.stkCallback with CheckoutRequestID and ResultCode)") from None
    if not isinstance(stk, dict):
        raise Malformed("Body.stkCallback is not an object")
    if not isinstance(checkout_id, str) or not PROVIDER_ID.fullmatch(checkout_id):
        raise Malformed("CheckoutRequestID is not printable text of 1 to 64 characters")
    if isinstance(code, bool) or not isinstance(code, (int, str)) or not _code(code):
        raise Malformed("ResultCode is missing or not a code")
    return stk


def _code(code) -> str:
    text = str(code).strip()
    return text[:16] if PROVIDER_ID.fullmatch(text[:16] or "-") else ""


def _text(value) -> str:
    return inbox.clean("" if value is None else str(value), 1000)


def _match(pattern: re.Pattern, value) -> str | None:
    return value if isinstance(value, str) and pattern.fullmatch(value) else None


def _item(stk: dict, name: str):
    meta = stk.get("CallbackMetadata")
    items = meta.get("Item") if isinstance(meta, dict) else None
    for entry in items if isinstance(items, list) else []:
        if isinstance(entry, dict) and entry.get("Name") == name:
            return entry.get("Value")
    return None


def _date(value) -> str | None:
    text = None if value is None or isinstance(value, bool) else str(value)[:14]
    return text if text and text.isascii() and text.isdigit() else None
