"""The Daraja simulator's M-Pesa Express: STK push, query, and the prompts' outcomes.

Outcomes are decided by the phone number (DESIGN §6), or by the person at the virtual phone
while its page is open; each prompt's callback is handed to the delivery module exactly once.
Another simulator may open prompts too (`open_prompt(owner=...)`: Paystack's M-Pesa charges);
those are settled by what it registered, and no Daraja callback goes out for them.
"""

import base64
import logging
import secrets
from datetime import timedelta

import redis
from flask import current_app
from sqlalchemy import Row, bindparam, select, update
from sqlalchemy.exc import IntegrityError

from portal.extensions import db, insert_loaded, loaded_after_commit
from portal.models import SandboxApp, SandboxStkRequest
from portal.queueing import enqueue, get_redis
from portal.sandbox import delivery
from portal.sandbox.daraja import ids
from portal.sandbox.daraja.errors import SimError, invalid
from portal.sandbox.daraja.errors import request_id_like_daraja as _request_id
from portal.sandbox.daraja.schemas import Credentials, StkPushRequest, StkQueryRequest
from portal.timeutil import as_nairobi, utcnow

log = logging.getLogger(__name__)

PUBLIC_SHORTCODE = "174379"
PUBLIC_PASSKEY = "bfb279f9aa9bdbcf158e97dd71a467cd2e0c893059b10f78e6b72ada1ed2c919"
SHORTCODES = {PUBLIC_SHORTCODE: PUBLIC_PASSKEY}
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


# -- checks that need the simulator's records --------------------------------------------
def check_credentials(asked: Credentials) -> str:
    """The shortcode, if it is one the simulator knows and the Password was made with its passkey."""
    passkey = SHORTCODES.get(asked.BusinessShortCode)
    if passkey is None:
        raise SimError(500, "500.001.1001", "Merchant does not exist")
    expected = base64.b64encode(f"{asked.BusinessShortCode}{passkey}{asked.Timestamp}".encode())
    if not secrets.compare_digest(expected, asked.Password.encode()):
        raise SimError(500, "500.001.1001", "Wrong credentials")
    return asked.BusinessShortCode


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


def push(asked: StkPushRequest, app: SandboxApp | Row | None = None) -> SandboxStkRequest:
    """Opens a prompt on the subscriber's phone for `app`'s business (Daraja's STK push)."""
    shortcode = check_credentials(asked)
    try:
        return open_prompt(
            phone=asked.PhoneNumber,
            amount=asked.Amount,
            shortcode=shortcode,
            account_reference=asked.AccountReference,
            description=asked.TransactionDesc,
            callback_url=asked.CallBackURL,
            business_name=app.name if app is not None else None,
        )
    except SubscriberBusy:
        raise _subscriber_busy() from None


class SubscriberBusy(Exception):
    """The phone already has a prompt open: M-Pesa locks the subscriber."""


def open_prompt(
    *,
    phone: str,
    amount: int,
    shortcode: str,
    account_reference: str | None,
    description: str | None,
    callback_url: str,
    business_name: str | None,
    owner: str | None = None,
    owner_id: int | None = None,
) -> SandboxStkRequest:
    """Opens an STK prompt on `phone` (2547...) for `amount` whole shillings and commits it. With
    the phone's page open the person answers it (or it times out with 1037); otherwise the phone
    suffix decides. `owner` names the simulator the prompt is for (its settler, registered in
    app.extensions["stk_owners"], closes the matter instead of a Daraja callback). Raises SubscriberBusy."""
    now = utcnow()
    interactive = is_attended(phone)
    delay = prompt_timeout() if interactive else float(current_app.config["SANDBOX_CALLBACK_DELAY"])
    planned = TIMED_OUT if interactive else planned_outcome(phone, amount)
    fields = dict(
        checkout_request_id=_checkout_request_id(phone),
        merchant_request_id=_request_id(),
        shortcode=shortcode,
        phone=phone,
        open_phone=phone,
        amount=amount,
        account_reference=account_reference,
        description=description,
        callback_url=callback_url,
        planned_code=planned,
        interactive=interactive,
        business_name=business_name,
        # a lost callback is a network fault, not the customer's choice: it holds on the phone too
        send_callback=not phone.endswith(NO_CALLBACK),
        resolve_at=now + timedelta(seconds=delay),
        owner=owner,
        owner_id=owner_id,
    )
    try:
        req = insert_loaded(SandboxStkRequest, **fields)
    except IntegrityError:  # open_phone is unique: this subscriber already has a prompt open
        db.session.rollback()
        overdue = db.session.execute(_OVERDUE, {"phone": phone, "now": now}).scalar()
        if overdue is None:
            raise SubscriberBusy(phone) from None
        # its job was lost: the prompt has timed out all the same, and its callback goes out
        overdue = db.session.get(SandboxStkRequest, overdue)
        _schedule_resolution(overdue, 0)  # sent with resolve()'s commit
        resolve(overdue)
        try:
            req = insert_loaded(SandboxStkRequest, **fields)
        except IntegrityError:  # another push took the freed phone first
            db.session.rollback()
            raise SubscriberBusy(phone) from None
    _schedule_resolution(req, delay)
    with loaded_after_commit():  # the answer is made of what was just written: no read-back
        db.session.commit()
    return req


def _subscriber_busy() -> SimError:
    return SimError(
        500, "500.001.1001", "Unable to lock subscriber, a transaction is already in process for the current subscriber"
    )


_OVERDUE = (  # the phone's open prompt, if its time is up: built once
    select(SandboxStkRequest.id)
    .where(SandboxStkRequest.open_phone == bindparam("phone"), SandboxStkRequest.resolve_at <= bindparam("now"))
    .limit(1)
)


def _schedule_resolution(req: SandboxStkRequest, delay: float, *, again: bool = False) -> None:
    # The prompt's own job id absorbs a second scheduling; a job putting itself back cannot use it.
    enqueue(
        "portal.jobs.sandbox_resolve_stk",
        req.id,
        queue="sandbox",
        job_id=None if again else f"sandbox-stk-{req.id}",
        delay=delay,
    )


_COUNT_QUERY = (
    update(SandboxStkRequest)
    .where(SandboxStkRequest.id == bindparam("_id"))
    .values(queries=SandboxStkRequest.queries + 1)
    .execution_options(synchronize_session=False)
)


def query(asked: StkQueryRequest) -> SandboxStkRequest:
    check_credentials(asked)
    req = SandboxStkRequest.query.filter_by(checkout_request_id=asked.CheckoutRequestID).first()
    if req is None:
        raise invalid("CheckoutRequestID")
    # Counted, so tests can see how often Daraja was asked about a payment (its spike arrest would).
    db.session.execute(_COUNT_QUERY, {"_id": req.id})
    db.session.commit()
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
        .values(
            result_code=code,
            result_desc=RESULTS.get(code, "Request failed"),
            receipt=ids.receipt() if code == 0 else None,
            resolved_at=utcnow(),
            open_phone=None,
        )
    ).rowcount
    if closed and deliver_now:
        # Not the prompt's own job id: that one is the timeout, already waiting, and would absorb this.
        enqueue(
            "portal.jobs.sandbox_resolve_stk",
            req.id,
            queue="sandbox",
            job_id=f"sandbox-stk-{req.id}-answer",
        )
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
    """The job: closes the prompt once its time is up (never before) and hands its callback to
    delivery, once however many jobs ask."""
    req = db.session.get(SandboxStkRequest, request_id)
    if req is None:
        return "gone"
    early = (req.resolve_at - utcnow()).total_seconds()
    if req.is_open and early > 0:  # RQ's scheduler works to the whole second: come back when due
        _schedule_resolution(req, early, again=True)
        db.session.commit()
        return "not yet"
    resolve(req)
    if req.owner is not None:  # another simulator's prompt: it settles its own matter, once
        return current_app.extensions["stk_owners"][req.owner](req)
    if not req.send_callback:
        return "no callback"
    copies = delivery.copies()
    claimed = db.session.execute(
        update(SandboxStkRequest)
        .where(SandboxStkRequest.id == req.id, SandboxStkRequest.callbacks_sent == 0)
        .values(callbacks_sent=copies)
    ).rowcount
    if not claimed:
        db.session.rollback()
        return "no callback"
    delivery.deliver(
        req.callback_url,
        callback_body(req),
        provider="daraja",
        kind="stk_callback",
        subject=req.checkout_request_id,
        copies=copies,
    )
    db.session.commit()
    return f"{copies} callback(s) queued"


def callback_body(req: SandboxStkRequest) -> dict:
    stk = {
        "MerchantRequestID": req.merchant_request_id,
        "CheckoutRequestID": req.checkout_request_id,
        "ResultCode": req.result_code,
        "ResultDesc": req.result_desc,
    }
    if req.result_code == 0:
        stk["CallbackMetadata"] = {
            "Item": [
                {"Name": "Amount", "Value": float(req.amount)},
                {"Name": "MpesaReceiptNumber", "Value": req.receipt},
                {"Name": "Balance"},
                {"Name": "TransactionDate", "Value": int(as_nairobi(req.resolved_at).strftime("%Y%m%d%H%M%S"))},
                {"Name": "PhoneNumber", "Value": int(req.phone)},
            ]
        }
    return {"Body": {"stkCallback": stk}}


def _checkout_request_id(phone: str) -> str:
    now = as_nairobi(utcnow())
    return f"ws_CO_{now:%d%m%Y%H%M%S}{now.microsecond // 1000:03d}{phone[3:]}"
