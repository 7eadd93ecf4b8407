"""The Daraja simulator's logic: apps, tokens, STK prompts and their outcomes.

Outcomes are decided by the phone number (DESIGN §6), or by the person at the virtual phone
while its page is open; callbacks are delivered over real HTTP, from a job, exactly once.
"""
import base64
import binascii
import logging
import math
import random
import re
import secrets
import string
import time
from datetime import datetime, timedelta

import redis
import requests
from flask import current_app
from sqlalchemy import update
from sqlalchemy.exc import IntegrityError

from portal.extensions import db
from portal.models import SandboxApp, SandboxStkRequest, SandboxToken
from portal.queueing import enqueue, get_redis
from portal.timeutil import as_nairobi, utcnow

log = logging.getLogger(__name__)

PUBLIC_SHORTCODE = "174379"
PUBLIC_PASSKEY = "bfb279f9aa9bdbcf158e97dd71a467cd2e0c893059b10f78e6b72ada1ed2c919"
SHORTCODES = {PUBLIC_SHORTCODE: PUBLIC_PASSKEY}
TOKEN_LIFETIME = 3600
NO_CALLBACK = "9999"  # a phone ending in this pays, but its callback is lost
ATTENDED_FOR = 5  # seconds a phone page counts as open after its last poll (it polls every second)
TIMED_OUT = 1037
CANCELLED = 1032

RESULTS = {
    0: "The service request is processed successfully.",
    1: "The balance is insufficient for the transaction.",
    1032: "Request cancelled by user",
    1037: "DS timeout user cannot be reached",
    2001: "The initiator information is invalid.",
}
SUFFIX_OUTCOMES = {"1032": 1032, "1037": 1037, "2001": 2001}


class SimError(Exception):
    """Answered as Daraja's error envelope."""

    def __init__(self, status: int, code: str, message: str, request_id: str | None = None):
        super().__init__(message)
        self.status, self.code, self.message = status, code, message
        self.request_id = request_id or _request_id()


def invalid(field: str) -> SimError:
    return SimError(400, "400.002.02", f"Bad Request - Invalid {field}")


def _request_id() -> str:
    h = secrets.token_hex
    return f"{h(2)}-{h(2)}-{h(2)}-{h(6)}{random.randint(1000, 9999999)}"


# -- apps and OAuth ----------------------------------------------------------------------
def create_app_credentials(name: str) -> SandboxApp:
    app = SandboxApp(name=name, consumer_key=secrets.token_urlsafe(24)[:32],
                     consumer_secret=secrets.token_urlsafe(24)[:32])
    db.session.add(app)
    return app


def issue_token(authorization: str | None) -> SandboxToken:
    if not authorization or not authorization.startswith("Basic "):
        raise SimError(400, "400.008.01", "Invalid Authentication passed")
    try:
        key, _, secret = base64.b64decode(authorization[6:].strip(), validate=True).decode().partition(":")
    except (binascii.Error, ValueError):  # not base64, not ASCII, not UTF-8
        raise SimError(400, "400.008.01", "Invalid Authentication passed") from None
    app = SandboxApp.query.filter_by(consumer_key=key).first()
    if app is None or not secrets.compare_digest(app.consumer_secret.encode(), secret.encode()):
        raise SimError(400, "400.008.01", "Invalid Authentication passed")
    token = SandboxToken(app_id=app.id, token="".join(random.choices(string.ascii_letters + string.digits, k=28)),
                         expires_at=utcnow() + timedelta(seconds=TOKEN_LIFETIME))
    db.session.add(token)
    db.session.commit()
    return token


def check_bearer(authorization: str | None) -> SandboxApp:
    """The app the bearer token was issued to; SimError 404 for a missing, unknown or expired token."""
    token = (authorization or "")[7:].strip() if (authorization or "").startswith("Bearer ") else ""
    row = SandboxToken.query.filter_by(token=token).first() if token else None
    if row is None or row.expires_at <= utcnow():
        raise SimError(404, "404.001.03", "Invalid Access Token")
    return db.session.get(SandboxApp, row.app_id)


# -- validation shared by push and query -----------------------------------------------
def check_credentials(body: dict) -> str:
    shortcode = str(body.get("BusinessShortCode", ""))
    if not re.fullmatch(r"[0-9]{5,7}", shortcode):
        raise invalid("BusinessShortCode")
    timestamp = str(body.get("Timestamp", ""))
    try:
        if not re.fullmatch(r"[0-9]{14}", timestamp):  # strptime alone accepts unpadded fields
            raise ValueError(timestamp)
        datetime.strptime(timestamp, "%Y%m%d%H%M%S")
    except ValueError:
        raise invalid("Timestamp") from None
    if not isinstance(body.get("Password"), str) or not body["Password"]:
        raise invalid("Password")
    passkey = SHORTCODES.get(shortcode)
    if passkey is None:
        raise SimError(500, "500.001.1001", "Merchant does not exist")
    expected = base64.b64encode(f"{shortcode}{passkey}{timestamp}".encode()).decode()
    if not secrets.compare_digest(expected.encode(), body["Password"].encode()):
        raise SimError(500, "500.001.1001", "Wrong credentials")
    return shortcode


def _whole_amount(value) -> int:
    if isinstance(value, bool):
        raise invalid("Amount")
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise invalid("Amount") from None
    if not math.isfinite(number) or number != int(number) or not 1 <= number <= 250_000:
        raise invalid("Amount")
    return int(number)


MSISDN = re.compile(r"254[0-9]{9}")


def validate_push(body: dict) -> dict:
    shortcode = check_credentials(body)
    if body.get("TransactionType") not in ("CustomerPayBillOnline", "CustomerBuyGoodsOnline"):
        raise invalid("TransactionType")
    amount = _whole_amount(body.get("Amount"))
    for field in ("PartyA", "PhoneNumber"):
        if not MSISDN.fullmatch(str(body.get(field, ""))):
            raise invalid(field)
    if not re.fullmatch(r"[0-9]{5,7}", str(body.get("PartyB", ""))):
        raise invalid("PartyB")
    url = body.get("CallBackURL")
    if not isinstance(url, str) or not re.fullmatch(r"https?://\S+", url):
        raise invalid("CallBackURL")
    reference = body.get("AccountReference")
    if not isinstance(reference, str) or not 1 <= len(reference) <= 12:
        raise invalid("AccountReference")
    desc = body.get("TransactionDesc", "")
    if not isinstance(desc, str) or len(desc) > 13:
        raise invalid("TransactionDesc")
    return {"shortcode": shortcode, "amount": amount, "phone": str(body["PhoneNumber"]),
            "callback_url": url, "account_reference": reference, "description": desc}


# -- STK push, query and resolution -------------------------------------------------------
def planned_outcome(phone: str, amount: int) -> int:
    for suffix, code in SUFFIX_OUTCOMES.items():
        if phone.endswith(suffix):
            return code
    return 1 if amount > current_app.config["SANDBOX_BALANCE"] else 0


# -- the virtual phone's presence ---------------------------------------------------------
def _attended_key(msisdn: str) -> str:
    return f"sandbox:phone:{msisdn}:attended"


def mark_attended(msisdn: str) -> None:
    """Someone has this number's phone page open: prompts wait for them instead of the suffix table."""
    try:
        get_redis().set(_attended_key(msisdn), 1, ex=ATTENDED_FOR)
    except redis.RedisError:
        log.warning("could not mark phone %s attended", msisdn, exc_info=True)


def is_attended(msisdn: str) -> bool:
    try:
        return bool(get_redis().exists(_attended_key(msisdn)))
    except redis.RedisError:  # nobody can be seen at the phone, so the suffix table answers
        return False


def prompt_timeout() -> float:
    return float(current_app.config["SANDBOX_PROMPT_TIMEOUT"])


def push(body: dict, app: SandboxApp | None = None) -> SandboxStkRequest:
    """Opens a prompt on the subscriber's phone for `app`'s business. With the phone's page open
    the person answers it (or it times out with 1037); otherwise the phone suffix decides."""
    fields = validate_push(body)
    now = utcnow()
    phone = fields["phone"]
    interactive = is_attended(phone)
    delay = prompt_timeout() if interactive else float(current_app.config["SANDBOX_CALLBACK_DELAY"])
    planned = TIMED_OUT if interactive else planned_outcome(phone, fields["amount"])
    overdue = SandboxStkRequest.query.filter(SandboxStkRequest.open_phone == phone,
                                             SandboxStkRequest.resolve_at <= now).first()
    if overdue is not None:  # its job was lost: the prompt has timed out all the same
        _schedule_resolution(overdue, 0)  # sent with resolve()'s commit: delivers its callback
        resolve(overdue)
    req = SandboxStkRequest(
        checkout_request_id=_checkout_request_id(phone), merchant_request_id=_request_id(),
        shortcode=fields["shortcode"], phone=phone, open_phone=phone, amount=fields["amount"],
        account_reference=fields["account_reference"], description=fields["description"],
        callback_url=fields["callback_url"], planned_code=planned, interactive=interactive,
        business_name=app.name if app is not None else None,
        # a lost callback is a network fault, not the customer's choice: it holds on the phone too
        send_callback=not phone.endswith(NO_CALLBACK), resolve_at=now + timedelta(seconds=delay))
    db.session.add(req)
    try:
        db.session.flush()
    except IntegrityError:  # open_phone is unique: this subscriber already has a prompt open
        db.session.rollback()
        raise SimError(500, "500.001.1001", "Unable to lock subscriber, a transaction is already in process "
                                            "for the current subscriber") from None
    _schedule_resolution(req, delay)
    db.session.commit()
    return req


def _schedule_resolution(req: SandboxStkRequest, delay: float) -> None:
    enqueue("portal.jobs.sandbox_resolve_stk", req.id, queue="sandbox", job_id=f"sandbox-stk-{req.id}",
            delay=delay, retry=False)


def query(body: dict) -> SandboxStkRequest:
    check_credentials(body)
    checkout_id = body.get("CheckoutRequestID")
    req = SandboxStkRequest.query.filter_by(checkout_request_id=str(checkout_id or "")).first()
    if req is None:
        raise invalid("CheckoutRequestID")
    if req.is_open and req.resolve_at <= utcnow():
        resolve(req)  # the job is late; the prompt's time is up all the same
    if req.is_open:
        raise SimError(500, "500.001.1001", "The transaction is being processed", request_id=req.checkout_request_id)
    return req


def resolve(req: SandboxStkRequest, code: int | None = None, *, deliver_now: bool = False) -> bool:
    """Closes an open prompt with its planned (or the given) result. False if already closed.

    The close is one conditional UPDATE, so a person's answer and the timeout job racing for
    the same prompt cannot both win. With `deliver_now` the callback job goes out at commit.
    """
    if not req.is_open:
        return False
    code = req.planned_code if code is None else code
    closed = db.session.execute(
        update(SandboxStkRequest)
        .where(SandboxStkRequest.id == req.id, SandboxStkRequest.resolved_at.is_(None))
        .values(result_code=code, result_desc=RESULTS.get(code, "Request failed"),
                receipt=_receipt() if code == 0 else None, resolved_at=utcnow(), open_phone=None)
    ).rowcount
    if closed and deliver_now:
        # Not the prompt's own job id: that one is the timeout, already waiting, and would absorb this.
        enqueue("portal.jobs.sandbox_resolve_stk", req.id, queue="sandbox", job_id=f"sandbox-stk-{req.id}-answer",
                retry=False)
    db.session.commit()
    return bool(closed)


def answer(req: SandboxStkRequest, pay: bool) -> bool:
    """The person at the virtual phone pays (0, or 1 above the sandbox balance) or cancels (1032)
    an interactive prompt; its callback is delivered at once. False if it was not theirs to answer
    (the suffix table answers it) or it has closed."""
    if not req.interactive:
        return False
    code = (1 if req.amount > current_app.config["SANDBOX_BALANCE"] else 0) if pay else CANCELLED
    return resolve(req, code, deliver_now=True)


def resolve_and_call_back(request_id: int) -> str:
    """Closes the prompt if still open and delivers its callback, once however many jobs ask."""
    req = db.session.get(SandboxStkRequest, request_id)
    if req is None:
        return "gone"
    early = (req.resolve_at - utcnow()).total_seconds()
    if req.is_open and early > 0:  # RQ's scheduler works to the whole second; never answer early
        time.sleep(min(early, 2.0))
    resolve(req)
    if not req.send_callback or req.callbacks_sent or not _claim_delivery(req):
        return "no callback"
    payload = callback_body(req)
    copies = max(1, int(current_app.config["SANDBOX_CALLBACK_COPIES"]))
    for _ in range(copies):
        try:
            answer = requests.post(req.callback_url, json=payload, timeout=10)
            req.last_delivery = f"HTTP {answer.status_code}"
        except requests.RequestException as exc:  # Daraja does not retry; neither do we
            req.last_delivery = f"failed: {exc.__class__.__name__}"
        req.callbacks_sent += 1
    db.session.commit()
    return req.last_delivery


def _claim_delivery(req: SandboxStkRequest) -> bool:
    """Marks the callback as being sent; only one of the jobs asking (answer, timeout) gets True."""
    claimed = db.session.execute(
        update(SandboxStkRequest)
        .where(SandboxStkRequest.id == req.id, SandboxStkRequest.callbacks_sent == 0,
               SandboxStkRequest.last_delivery.is_(None))
        .values(last_delivery="sending")
    ).rowcount
    db.session.commit()
    return bool(claimed)


def callback_body(req: SandboxStkRequest) -> dict:
    stk = {"MerchantRequestID": req.merchant_request_id, "CheckoutRequestID": req.checkout_request_id,
           "ResultCode": req.result_code, "ResultDesc": req.result_desc}
    if req.result_code == 0:
        stk["CallbackMetadata"] = {"Item": [
            {"Name": "Amount", "Value": float(req.amount)},
            {"Name": "MpesaReceiptNumber", "Value": req.receipt},
            {"Name": "Balance"},
            {"Name": "TransactionDate", "Value": int(as_nairobi(req.resolved_at).strftime("%Y%m%d%H%M%S"))},
            {"Name": "PhoneNumber", "Value": int(req.phone)},
        ]}
    return {"Body": {"stkCallback": stk}}



def _checkout_request_id(phone: str) -> str:
    now = as_nairobi(utcnow())
    return f"ws_CO_{now:%d%m%Y%H%M%S}{now.microsecond // 1000:03d}{phone[3:]}"


def _receipt() -> str:
    now = as_nairobi(utcnow())
    year = chr(ord("N") + now.year - 2019) if now.year - 2019 < 13 else "Z"
    day = str(now.day) if now.day < 10 else chr(ord("A") + now.day - 10)
    tail = "".join(random.choices(string.ascii_uppercase + string.digits, k=7))
    return f"{year}{chr(ord('A') + now.month - 1)}{day}{tail}"
