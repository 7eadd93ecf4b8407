"""C2B (customer to business): the customer pays the merchant's shortcode from their phone;
Daraja asks us to validate the payment, then confirms it.

Guarantees: a confirmation lands in the ledger exactly once however often it is delivered
(keyed by its TransID, the payment's reference); validation answers by the merchant's
rules in Daraja's words; a request that did not come through the URLs we registered for
the merchant (a valid token) is stored and never applied.
"""

import re
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation

from sqlalchemy.exc import IntegrityError

from portal.extensions import db
from portal.models import Merchant, Payment, PaymentStatus
from portal.services import inbox
from portal.services.links import callback_token, external_url, merchant_of_ref, merchant_ref
from portal.services.mpesa.client import daraja_base_url, daraja_for, source_problem
from portal.services.transitions import create_payment
from portal.timeutil import iso_z, utcnow

S = PaymentStatus
TRANS_ID = re.compile(r"[A-Z0-9]{6,20}")
SHORTCODE = re.compile(r"[0-9]{5,7}")
MSISDN = re.compile(r"254[0-9]{9}")
DIGITS_TIME = re.compile(r"[0-9]{14}")

ACCEPT = {"ResultCode": "0", "ResultDesc": "Accepted"}
# Daraja's rejection codes (what the customer's phone is told).
INVALID_MSISDN, INVALID_ACCOUNT, INVALID_AMOUNT = "C2B00011", "C2B00012", "C2B00013"
INVALID_SHORTCODE, OTHER_ERROR = "C2B00015", "C2B00016"


def reject(code: str) -> dict:
    return {"ResultCode": code, "ResultDesc": "Rejected"}


def c2b_urls(merchant: Merchant) -> tuple[str, str]:
    """(ValidationURL, ConfirmationURL) for the merchant, each with a token naming it.

    Daraja refuses to register a URL containing "mpesa" (and other words), so these are the
    /hooks/daraja/c2b/... aliases of the documented /api/mpesa/callback/c2b/... routes."""
    ref = merchant_ref(merchant.id)
    token = callback_token(ref)
    return (
        external_url("daraja_webhooks.c2b_validation_alias", ref=ref, token=token),
        external_url("daraja_webhooks.c2b_confirmation_alias", ref=ref, token=token),
    )


Malformed = inbox.Malformed


@dataclass(frozen=True)
class C2bPayment:
    trans_id: str
    amount: int  # minor units
    shortcode: str
    bill_ref: str | None
    msisdn: str  # as sent: digits, masked (v2) or a SHA-256 hex (v1)
    trans_time: str | None
    transaction_type: str | None
    first_name: str | None
    org_balance: str | None


def parse(raw: bytes) -> C2bPayment:
    data = inbox.read_json(raw)
    if not isinstance(data, dict):
        raise Malformed("not a C2B request (a JSON object)")
    trans_id = data.get("TransID")
    if not isinstance(trans_id, str) or not TRANS_ID.fullmatch(trans_id):
        raise Malformed("TransID is not 6 to 20 capital letters and digits")
    shortcode = str(data.get("BusinessShortCode", ""))
    if not SHORTCODE.fullmatch(shortcode):
        raise Malformed("BusinessShortCode is not a shortcode")
    return C2bPayment(
        trans_id=trans_id,
        amount=_amount(data.get("TransAmount")),
        shortcode=shortcode,
        bill_ref=_text(data.get("BillRefNumber"), 64),
        msisdn=_text(data.get("MSISDN"), 64) or "",
        trans_time=_match(DIGITS_TIME, data.get("TransTime")),
        transaction_type=_text(data.get("TransactionType"), 32),
        first_name=_text(data.get("FirstName"), 64),
        org_balance=_text(data.get("OrgAccountBalance"), 32),
    )


def _amount(value) -> int:
    """ "250.00" -> 25000 (minor units); whole shillings only, as M-Pesa moves them."""
    if isinstance(value, bool) or not isinstance(value, (str, int, float)):
        raise Malformed("TransAmount is missing")
    try:
        amount = Decimal(str(value).strip()) * 100
    except InvalidOperation:
        raise Malformed("TransAmount is not a number") from None
    if not amount.is_finite() or not 0 < amount <= 10**12 or amount % 100:  # bounded before the remainder
        raise Malformed("TransAmount is not a whole, positive number of shillings")
    return int(amount)


def _text(value, limit: int) -> str | None:
    if value is None or isinstance(value, (dict, list, bool)):
        return None
    return inbox.clean(str(value).strip(), limit) or None


def _match(pattern: re.Pattern, value) -> str | None:
    return value if isinstance(value, str) and pattern.fullmatch(value) else None


def _describe(c2b: C2bPayment) -> str:
    kind = c2b.transaction_type or "C2B"
    return f"{kind} payment from {c2b.first_name}" if c2b.first_name else f"{kind} payment"


def _merchant(item: inbox.Item) -> Merchant | None:
    """The merchant whose registered URL this came through (a valid token for its ref)."""
    merchant_id = merchant_of_ref(item.args.get("ref"))
    if not (item.token_valid and merchant_id is not None):
        return None
    return db.session.get(Merchant, merchant_id)


def rules(merchant: Merchant) -> dict:
    """The merchant's C2B rules: `accounts`, a list of account numbers it accepts (empty: any)."""
    return (merchant.settings or {}).get("c2b") or {}


@inbox.interpreter("daraja", "c2b_validation")
def validate(item: inbox.Item) -> inbox.Verdict:
    try:
        c2b = parse(item.raw)
    except Malformed as exc:
        return inbox.Verdict("invalid", str(exc), reply=reject(OTHER_ERROR))
    merchant = _merchant(item)
    problem = source_problem(item.source_ip) or (None if merchant else "no valid token for a merchant")
    if problem:
        return inbox.Verdict("rejected", f"{problem}; refused", provider_id=c2b.trans_id, reply=reject(OTHER_ERROR))
    found = {"provider_id": c2b.trans_id, "merchant_id": merchant.id}
    if merchant.daraja_shortcode and c2b.shortcode != merchant.daraja_shortcode:
        return inbox.Verdict("rejected", "not the merchant's shortcode", reply=reject(INVALID_SHORTCODE), **found)
    accounts = [str(a).strip().upper() for a in rules(merchant).get("accounts") or []]
    if accounts and (c2b.bill_ref or "").upper() not in accounts:
        detail = f"account {c2b.bill_ref!r} is not one the merchant accepts"
        return inbox.Verdict("rejected", detail, reply=reject(INVALID_ACCOUNT), **found)
    return inbox.Verdict("applied", "accepted", reply=ACCEPT, **found)


@inbox.interpreter("daraja", "c2b_confirmation")
def confirm(item: inbox.Item) -> inbox.Verdict:
    try:
        c2b = parse(item.raw)
    except Malformed as exc:
        return inbox.Verdict("invalid", str(exc))
    merchant = _merchant(item)
    problem = source_problem(item.source_ip) or (None if merchant else "no valid token for a merchant")
    if problem:
        return inbox.Verdict("rejected", f"{problem}; not recorded", provider_id=c2b.trans_id)
    reference = f"C2B{c2b.trans_id}"
    found = {"provider_id": c2b.trans_id, "merchant_id": merchant.id}
    existing = Payment.get_for_merchant(merchant.id, reference=reference)
    if existing is not None:
        return inbox.Verdict("duplicate", "already recorded", payment_id=existing.id, status=existing.status, **found)
    try:
        with db.session.begin_nested():  # a concurrent copy may insert first: the unique reference decides
            payment = create_payment(
                "callback",
                f"C2B payment {c2b.trans_id} confirmed by M-Pesa",
                merchant_id=merchant.id,
                reference=reference,
                rail="mpesa",
                kind="c2b",
                status=S.COMPLETED,
                amount=c2b.amount,
                currency="KES",
                phone=c2b.msisdn if MSISDN.fullmatch(c2b.msisdn) else None,
                account_reference=c2b.bill_ref,
                description=f"{c2b.transaction_type or 'C2B'} payment"
                + (f" from {c2b.first_name}" if c2b.first_name else ""),
                receipt=c2b.trans_id,
                transaction_date=c2b.trans_time,
                result_code="0",
                result_desc="Confirmed",
                completed_at=utcnow(),
                api="gateway",
                meta={"msisdn": c2b.msisdn, "shortcode": c2b.shortcode, "org_balance": c2b.org_balance},
            )
    except IntegrityError:
        existing = Payment.get_for_merchant(merchant.id, reference=reference)
        return inbox.Verdict("duplicate", "already recorded", payment_id=existing.id if existing else None, **found)
    return inbox.Verdict("applied", "recorded", payment_id=payment.id, status=S.COMPLETED, **found)


RESPONSE_TYPES = ("Completed", "Cancelled")


def register_urls(merchant: Merchant, response_type: str, accounts: list[str] | None = None) -> dict:
    """Registers the merchant's validation and confirmation URLs with Daraja for its shortcode
    and keeps its rules (`accounts`: the account numbers it accepts; None keeps the list it
    has, [] accepts any). Returns what was registered, the URLs without their token. Raises
    NotConfigured, DarajaError, DarajaUnavailable."""
    client = daraja_for(merchant)
    validation_url, confirmation_url = c2b_urls(merchant)
    ack = client.register_c2b_urls(confirmation_url, validation_url, response_type)
    kept = rules(merchant)
    settings = dict(merchant.settings or {})
    settings["c2b"] = {
        **kept,
        "response_type": response_type,
        "accounts": kept.get("accounts", []) if accounts is None else accounts,
        "registered_at": iso_z(utcnow()),
    }
    merchant.settings = settings
    db.session.commit()
    return {
        "shortCode": merchant.daraja_shortcode,
        "responseType": response_type,
        "validationUrl": validation_url.split("?", 1)[0],
        "confirmationUrl": confirmation_url.split("?", 1)[0],
        "accounts": settings["c2b"]["accounts"],
        "originatorConversationId": ack.originator_conversation_id,
    }


def simulation_allowed() -> bool:
    """C2B simulation exists on Daraja's sandbox and our simulator, never in production."""
    return "api.safaricom.co.ke" not in daraja_base_url()


def simulate(merchant: Merchant, phone: str, amount: int, bill_ref: str | None) -> str:
    """Asks the sandbox to have `phone` pay `amount` whole shillings to the merchant's
    shortcode; validation and confirmation follow over HTTP. Returns Daraja's id for it."""
    client = daraja_for(merchant)
    return client.simulate_c2b(phone, amount, bill_ref).originator_conversation_id
