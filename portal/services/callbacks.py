"""Daraja STK callbacks: store raw first, then verify and apply.

Guarantees: every request is stored before it is read; a malformed or unknown body is
stored and acknowledged, never an error; a callback without a valid token (or from an
address outside the allowlist, or not matching the payment) is never applied as it
stands: it only makes us ask Daraja (STK query) and apply Daraja's answer.
"""
import json
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from urllib.parse import parse_qs

from flask import current_app

from portal.extensions import db
from portal.models import Callback, Payment, PaymentStatus
from portal.queueing import enqueue
from portal.services.payments import StkResult, apply_stk_result, callback_token_valid
from portal.timeutil import utcnow

STRIPPED_HEADERS = {"authorization", "cookie"}


@dataclass
class Received:
    callback: Callback
    payment: Payment | None


class Malformed(ValueError):
    pass


def receive_stk_callback(raw: bytes, *, path: str, query_string: str, headers: dict,
                         source_ip: str | None) -> Received:
    cb = Callback(provider="daraja", kind="stk", path=path, body=raw.decode("utf-8", "replace"),
                  query_string=query_string, source_ip=source_ip,
                  headers={k: v for k, v in headers.items() if k.lower() not in STRIPPED_HEADERS})
    db.session.add(cb)
    db.session.commit()
    payment = process(cb)
    db.session.commit()
    return Received(cb, payment)


def process(cb: Callback) -> Payment | None:
    """Interprets a stored callback and records its outcome on it. The caller commits."""
    cb.processed_at = utcnow()
    try:
        stk = parse_stk(cb.body)
    except Malformed as exc:
        cb.outcome, cb.outcome_detail = "invalid", str(exc)
        return None
    cb.provider_id = stk["CheckoutRequestID"]
    args = {k: v[0] for k, v in parse_qs(cb.query_string or "").items()}
    ref, token = args.get("ref"), args.get("token")

    payment = Payment.query.filter_by(checkout_request_id=cb.provider_id).first()
    if payment is None and ref:
        payment = Payment.query.filter_by(reference=ref).first()
        if payment is not None and payment.checkout_request_id is not None:
            payment = None  # the ref names another payment than the CheckoutRequestID does
    if payment is None:
        cb.outcome, cb.outcome_detail = "orphan", "no payment has this CheckoutRequestID"
        return None
    cb.payment_id, cb.merchant_id = payment.id, payment.merchant_id

    problem = _trust_problem(cb, payment, ref, token, stk)
    if problem:
        cb.outcome = "rejected"
        cb.outcome_detail = f"{problem}; not applied as sent, asking M-Pesa for the result"
        if payment.checkout_request_id:
            enqueue("portal.jobs.query_stk_payment", payment.id, queue="payments",
                    job_id=f"stk-query-{payment.id}")
        return payment

    if payment.checkout_request_id is None:
        if payment.status == PaymentStatus.PENDING:
            cb.outcome, cb.outcome_detail = "orphan", "arrived before M-Pesa's acknowledgement was stored"
            return payment
        payment.checkout_request_id = cb.provider_id  # the push timed out, but it reached the phone

    result = StkResult(str(stk["ResultCode"]), str(stk.get("ResultDesc", "")),
                       _item(stk, "MpesaReceiptNumber"), _date(_item(stk, "TransactionDate")))
    outcome = apply_stk_result(payment, result, source="callback")
    cb.outcome = {"applied": "applied", "duplicate": "duplicate"}.get(outcome, "rejected")
    cb.outcome_detail = {"applied": f"payment is now {payment.status}",
                         "duplicate": "already applied",
                         "stale": f"payment is already {payment.status}; result ignored"}[outcome]
    return payment


def replay_orphans(checkout_request_id: str) -> None:
    """Re-reads callbacks that arrived before their payment knew its CheckoutRequestID."""
    for cb in Callback.query.filter_by(provider="daraja", provider_id=checkout_request_id, outcome="orphan"):
        process(cb)
        db.session.commit()


def _trust_problem(cb: Callback, payment: Payment, ref, token, stk: dict) -> str | None:
    allowed = [ip.strip() for ip in current_app.config["DARAJA_CALLBACK_IPS"].split(",") if ip.strip()]
    if allowed and cb.source_ip not in allowed:
        return f"source address {cb.source_ip} is not on the Daraja allowlist"
    if not (ref == payment.reference and callback_token_valid(ref, token)):
        return "no valid callback token"
    cb.token_valid = True
    if str(stk["ResultCode"]) == "0":
        amount, phone = _item(stk, "Amount"), _item(stk, "PhoneNumber")
        try:
            paid = Decimal(str(amount)) * 100
        except (InvalidOperation, ValueError):
            return f"amount {amount!r} is unreadable"
        if paid != payment.amount:
            return f"amount {amount} does not match the payment's {payment.amount_major}"
        if phone is not None and str(phone) != payment.phone:
            return f"phone {phone} does not match the payment's"
    return None


def parse_stk(body: str) -> dict:
    try:
        data = json.loads(body)
        stk = data["Body"]["stkCallback"]
        checkout_id = stk["CheckoutRequestID"]
        code = stk["ResultCode"]
    except (ValueError, KeyError, TypeError):
        raise Malformed("not an STK callback (Body.stkCallback with CheckoutRequestID and ResultCode)") from None
    if not isinstance(checkout_id, str) or not checkout_id or len(checkout_id) > 64:
        raise Malformed("CheckoutRequestID is not a string of at most 64 characters")
    if isinstance(code, bool) or not isinstance(code, (int, str)) or not str(code).strip():
        raise Malformed("ResultCode is missing or not a code")
    return stk


def _item(stk: dict, name: str):
    items = (stk.get("CallbackMetadata") or {}).get("Item") or []
    for item in items if isinstance(items, list) else []:
        if isinstance(item, dict) and item.get("Name") == name:
            return item.get("Value")
    return None


def _date(value) -> str | None:
    return None if value is None else str(value)[:14]
