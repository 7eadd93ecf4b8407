"""The AT simulator's SMS: who may send (the sandbox key with the username "sandbox"), what each
recipient's answer is, what is kept (one SandboxSms per recipient, refused ones too) and the
delivery report each accepted message gets, over real HTTP, if a report URL is configured.

Outcomes by the number (config): invalid → 403 InvalidPhoneNumber; ending in
SANDBOX_AT_BLACKLIST_SUFFIX → 406 UserInBlacklist; ending in SANDBOX_AT_FAILED_SUFFIX → 101, then
reported Failed; anything else → 101, then reported Success."""

import hmac
import math
import re
import secrets
from dataclasses import dataclass
from decimal import Decimal
from urllib.parse import urlencode

import phonenumbers
from flask import current_app

from portal.extensions import db
from portal.models import SandboxSms
from portal.openapi import FORM
from portal.sandbox import delivery

USERNAME = "sandbox"
DEFAULT_SENDER = "AFRICASTKNG"
NETWORK_CODE = "99999"  # AT's sandbox network ("Athena")
PRICE = Decimal("0.8000")  # KES per page
# Alphanumeric sender IDs are at most 11 characters on GSM; short codes are digits.
SENDER_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9 ._-]{0,10}|[0-9]{3,8}")
ACCEPTED = (101, "Success")
INVALID = (403, "InvalidPhoneNumber")
BLACKLISTED = (406, "UserInBlacklist")
FAILURE_REASON = "DeliveryFailure"
_UNSTORABLE = re.compile(r"[\x00-\x1f\x7f\ud800-\udfff]")


class AccountRejected(Exception):
    """Nothing is sent to anyone: AT's `{"Message": <reason>, "Recipients": []}`."""


def key_valid(api_key: str | None) -> bool:
    expected = current_app.config["SANDBOX_AT_API_KEY"].encode()
    return bool(api_key) and hmac.compare_digest(expected, api_key.encode("utf-8", "surrogatepass"))


def international(number: str) -> str | None:
    """`number` as +<digits> if it is a valid phone number (with or without its plus), else None."""
    digits = number[1:] if number.startswith("+") else number
    if not (digits.isascii() and digits.isdigit() and 7 <= len(digits) <= 15):
        return None
    try:
        valid = phonenumbers.is_valid_number(phonenumbers.parse("+" + digits))
    except phonenumbers.NumberParseException:
        return None
    return "+" + digits if valid else None


def pages(message: str) -> int:
    """SMS parts billed: 160 characters in one (153 per part when split), 70 (67) beyond GSM's ASCII."""
    single, part = (160, 153) if message.isascii() else (70, 67)
    return 1 if len(message) <= single else math.ceil(len(message) / part)


def cost_of(amount: Decimal) -> str:
    return f"KES {amount:.4f}" if amount else "0"


@dataclass(frozen=True)
class Sent:
    summary: str  # "Sent to 1/1 Total Cost: KES 0.8000"
    recipients: list[SandboxSms]


def send(username: str, to: str, message: str, sender: str | None) -> Sent:
    """Answers one send for every recipient in `to` (comma-separated). Raises AccountRejected.
    Call it inside the request's transaction: the rows and the report deliveries join it."""
    sender = DEFAULT_SENDER if sender is None or not sender.strip() else sender.strip()
    if not SENDER_ID.fullmatch(sender):
        raise AccountRejected("InvalidSenderId")
    price = PRICE * pages(message)
    rows = []
    for given in (part.strip() for part in to.split(",")):
        if not given:
            continue
        number = international(given)
        if number is None:
            code, status = INVALID
        elif _ends(number, "SANDBOX_AT_BLACKLIST_SUFFIX"):
            code, status = BLACKLISTED
        else:
            code, status = ACCEPTED
        accepted = code == ACCEPTED[0]
        report = "Failed" if accepted and _ends(number, "SANDBOX_AT_FAILED_SUFFIX") else "Success"
        row = SandboxSms(
            to=number or _printable(given, 16),
            sender=_printable(sender, 32),
            message=message,
            message_id="ATXid_" + secrets.token_hex(16) if accepted else None,
            status_code=code,
            status=status,
            cost=cost_of(price) if accepted else "0",
            delivery_status=report if accepted else None,
            delivered=accepted and report == "Success",
        )
        db.session.add(row)
        rows.append(row)
        if accepted:
            _report(row)
    sent = [r for r in rows if r.message_id]
    return Sent(f"Sent to {len(sent)}/{len(rows)} Total Cost: {cost_of(price * len(sent))}", rows)


def _report(row: SandboxSms) -> None:
    """AT's delivery report for `row`, to the configured URL after the usual delay."""
    url = current_app.config["SANDBOX_AT_DELIVERY_REPORT_URL"]
    if not url:
        return
    fields = {"id": row.message_id, "status": row.delivery_status, "phoneNumber": row.to, "networkCode": NETWORK_CODE}
    if row.delivery_status == "Failed":
        fields["failureReason"] = FAILURE_REASON
    fields["retryCount"] = "0"
    delivery.deliver(
        url,
        urlencode(fields),
        provider="africastalking",
        kind="delivery_report",
        subject=row.message_id,
        delay=current_app.config["SANDBOX_CALLBACK_DELAY"],
        headers={"Content-Type": FORM},
    )


def _ends(number: str, setting: str) -> bool:
    suffix = current_app.config[setting]
    return bool(suffix) and number.endswith(suffix)


def _printable(text: str, limit: int) -> str:
    return _UNSTORABLE.sub("\ufffd", text)[:limit]


def kept(number: str, limit: int = 100, delivered_only: bool = False) -> list[SandboxSms]:
    """The messages kept for a number (+254... or 254...: senders use either), newest first;
    with `delivered_only`, those that reached the handset (what a phone shows)."""
    digits = number.removeprefix("+")
    query = SandboxSms.query.filter(SandboxSms.to.in_([digits, "+" + digits]))
    if delivered_only:
        query = query.filter(SandboxSms.delivered.is_(True))
    return query.order_by(SandboxSms.id.desc()).limit(limit).all()
