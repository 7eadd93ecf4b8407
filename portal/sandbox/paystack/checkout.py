"""The Paystack simulator's hosted checkout (sandbox web layer), at the authorization URL
/sandbox/paystack/checkout/<access_code>: a page for the customer, who pays by card or M-Pesa,
fails the payment or cancels. Paying or failing ends the transaction (a success sends
charge.success) and sends the browser to the callback URL with ?trxref=<ref>&reference=<ref>, as
Paystack does; cancelling leaves it abandoned and goes to metadata.cancel_action (else the
callback URL). Without a callback URL the page itself says what happened.

Cards: Paystack's published test cards behave as published (4084 0840 8408 4081 pays, 4084 0800
0000 5408 is declined, 4084 0800 0067 0037 has insufficient funds); any other valid number pays.
M-Pesa: the number's ending decides at once, as on a phone nobody holds (DESIGN §6)."""

import re
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from flask import Blueprint, Response, abort, redirect, render_template, request

from portal.extensions import db
from portal.models import SandboxPaystackIntegration, SandboxPaystackTransaction
from portal.sandbox.daraja import ids, stk
from portal.sandbox.paystack import charges, shapes, transactions
from portal.web.formatting import money
from portal.web.security import CSP

bp = Blueprint("sandbox_paystack_checkout", __name__, url_prefix="/sandbox/paystack/checkout")

TEST_CARDS = {
    "4084080000005408": "Declined",
    "4084080000670037": "Insufficient Funds",
}
PHONE = re.compile(r"(?:\+?254|0)([17][0-9]{8})")
ORIGIN = re.compile(r"https?://[A-Za-z0-9.\-]+(?::[0-9]{1,5})?")  # nothing that could end a CSP directive
ENDED = {
    "success": "Payment successful",
    "failed": "Payment failed",
    "abandoned": "Payment not completed",
    "reversed": "Payment refunded",
}


def luhn_valid(number: str) -> bool:
    if not (number.isdigit() and 12 <= len(number) <= 19):
        return False
    total = 0
    for position, digit in enumerate(int(d) for d in reversed(number)):
        if position % 2:
            digit = digit * 2 - 9 if digit > 4 else digit * 2
        total += digit
    return total % 10 == 0


def render_error(status: int, message: str, details=None) -> Response:
    """The checkout's own page for its errors (404 for an unknown address, 405...)."""
    body = render_template("sandbox/paystack_checkout.html", tx=None, problem=details or message)
    return Response(body, status=status, mimetype="text/html")


def _open(access_code: str) -> SandboxPaystackTransaction:
    tx = transactions.by_access_code(access_code)
    if tx is None:
        abort(404, "There is no payment at this address. Ask the shop for a new payment link.")
    return tx


def _render(tx: SandboxPaystackTransaction, status: int = 200, **extra) -> Response:
    integration = db.session.get(SandboxPaystackIntegration, tx.integration_id)
    body = render_template(
        "sandbox/paystack_checkout.html",
        tx=tx,
        business=integration.business_name,
        amount=money(tx.amount, tx.currency),
        ended=ENDED.get(tx.status) if tx.status not in transactions.OPEN else None,
        offers={channel: _offered(tx, channel) for channel in ("card", "mobile_money")},
        **extra,
    )
    response = Response(body, status=status, mimetype="text/html")
    response.headers["Content-Security-Policy"] = _policy(tx)
    return response


def _policy(tx: SandboxPaystackTransaction) -> str:
    """The portal's policy, but its forms may also lead to the shop: browsers hold a form's
    redirect to the policy's form-action, and the checkout sends the customer back to the
    callback URL (or the cancel action) on another origin."""
    origins = {_origin(url) for url in (tx.callback_url, _cancel_action(tx))} - {None}
    return CSP.replace("form-action 'self'", " ".join(["form-action 'self'", *sorted(origins)]))


def _origin(url: str | None) -> str | None:
    if not url:
        return None
    parts = urlsplit(url)
    origin = f"{parts.scheme}://{parts.netloc.rpartition('@')[2]}"
    return origin if ORIGIN.fullmatch(origin) else None


def _cancel_action(tx: SandboxPaystackTransaction) -> str | None:
    metadata = shapes.metadata_of(tx.metadata_json)
    action = metadata.get("cancel_action") if isinstance(metadata, dict) else None
    return action if isinstance(action, str) and re.match(r"https?://", action) else None


def _offered(tx: SandboxPaystackTransaction, channel: str) -> bool:
    """Whether the checkout offers `channel`: every one unless initialize named some."""
    return not tx.channels or channel in tx.channels


def _with_reference(url: str, reference: str) -> str:
    """`url` with trxref and reference added to its query, as Paystack's checkout sends customers back."""
    parts = urlsplit(url)
    query = parse_qsl(parts.query, keep_blank_values=True) + [("trxref", reference), ("reference", reference)]
    return urlunsplit((parts.scheme, parts.netloc, parts.path, urlencode(query), parts.fragment))


def _back(tx: SandboxPaystackTransaction) -> Response:
    db.session.refresh(tx)
    if tx.callback_url:
        return redirect(_with_reference(tx.callback_url, tx.reference), 303)
    return _render(tx)


@bp.get("/<access_code>")
def page(access_code: str):
    return _render(_open(access_code))


@bp.post("/<access_code>/card")
def pay_by_card(access_code: str):
    tx = _open(access_code)
    if tx.status not in transactions.OPEN or not _offered(tx, "card"):
        return _render(tx, 409)
    number = re.sub(r"[\s-]", "", request.form.get("card_number", ""))
    if not luhn_valid(number):
        return _render(tx, 422, card_error="That is not a card number: check the 12 to 19 digits.")
    declined = TEST_CARDS.get(number)
    authorization = shapes.card_authorization(number)
    if declined:
        transactions.finish(tx, "failed", declined, declined, channel="card")
    else:
        transactions.finish(tx, "success", "Successful", "madePayment", channel="card", authorization=authorization)
    return _back(tx)


@bp.post("/<access_code>/mpesa")
def pay_by_mpesa(access_code: str):
    tx = _open(access_code)
    if tx.status not in transactions.OPEN or not _offered(tx, "mobile_money"):
        return _render(tx, 409)
    local = PHONE.fullmatch(re.sub(r"[\s-]", "", request.form.get("phone", "")))
    if local is None:
        return _render(tx, 422, phone_error="Enter an M-Pesa number such as 0712 345 678.")
    msisdn = "254" + local.group(1)
    code = stk.planned_outcome(msisdn, transactions.whole_shillings(tx.amount))
    status, gateway_response, message = charges.outcome(code, stk.RESULTS.get(code))
    transactions.finish(
        tx,
        status,
        gateway_response,
        message,
        channel="mobile_money",
        authorization=shapes.mobile_money_authorization("+" + msisdn),
        phone="+" + msisdn,
        receipt=ids.receipt() if status == "success" else None,
        send_webhook=not msisdn.endswith(stk.NO_CALLBACK),
    )
    return _back(tx)


@bp.post("/<access_code>/fail")
def fail(access_code: str):
    tx = _open(access_code)
    if tx.status not in transactions.OPEN:
        return _render(tx, 409)
    transactions.finish(tx, "failed", "Declined", "Declined", channel="card")
    return _back(tx)


@bp.post("/<access_code>/cancel")
def cancel(access_code: str):
    """The customer gives up: nothing changes (the transaction stays abandoned)."""
    tx = _open(access_code)
    cancel_action = _cancel_action(tx)
    if tx.status in transactions.OPEN and cancel_action:
        return redirect(cancel_action, 303)
    if tx.status in transactions.OPEN and tx.callback_url:
        return redirect(_with_reference(tx.callback_url, tx.reference), 303)
    return _render(tx, cancelled=tx.status in transactions.OPEN)
