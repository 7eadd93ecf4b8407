"""Payouts (B2C) and C2B receipts, the portal's pages. A payout is reviewed before it is sent:
the merchant sees the amount, the phone, the remarks and the name the customer will see. The
review hands out a signed one-time key bound to those facts: sending claims it (idempotency),
so a double click or a resent form pays once. Payout rows poll until final; receipts refresh."""

import secrets

from flask import Blueprint, current_app, flash, redirect, render_template, request, url_for
from flask_login import current_user, login_required
from flask_wtf import FlaskForm
from itsdangerous import BadSignature, SignatureExpired, URLSafeTimedSerializer
from wtforms import HiddenField, StringField
from wtforms.validators import DataRequired, InputRequired, Length, NumberRange, ValidationError

from portal.api.parsing import has_unsafe_characters
from portal.models import Payment
from portal.services import errors, idempotency
from portal.services.mpesa import b2c
from portal.services.phones import InvalidPhone, normalise_safaricom
from portal.web.forms import strip
from portal.web.htmx import STOP_POLLING, is_htmx
from portal.web.payments import ShillingsField

bp = Blueprint("payouts", __name__)
RECENT = 20  # payouts and receipts shown
MAX_ID = 2**31 - 1
API = "portal-payout"  # the idempotency records' namespace (the gateway's B2C has its own)
REVIEW_MINUTES = 15  # a confirmation older than this is reviewed again (and outlives no idempotency record)
NOT_CONFIGURED = (
    "Payouts are not set up yet: add the initiator name, its password and Safaricom's certificate in Settings."
)


class PayoutForm(FlaskForm):
    phone = StringField(
        "Recipient's phone", filters=[strip], validators=[DataRequired("Enter the M-Pesa number to pay.")]
    )
    amount = ShillingsField(
        "Amount (KES)",
        validators=[
            InputRequired("Enter the amount in whole shillings."),
            NumberRange(
                b2c.MINIMUM,
                b2c.MAXIMUM,
                f"M-Pesa pays out from {b2c.MINIMUM} to {b2c.MAXIMUM:,} shillings at a time.",
            ),
        ],
    )
    remarks = StringField(
        "What it is for",
        filters=[strip],
        validators=[
            DataRequired("Say what the payout is for, for example “Refund for order 42”."),
            Length(2, 100, "Use 2 to 100 characters."),
        ],
    )
    confirmation = HiddenField()

    def validate_phone(self, field):
        try:
            field.data = normalise_safaricom(field.data)
        except InvalidPhone as exc:
            raise ValidationError(f"{exc}. Example: 0712 345 678.") from None

    def validate_remarks(self, field):
        if has_unsafe_characters(field.data):
            raise ValidationError("Use letters, digits and punctuation only: no tabs or line breaks.")


class Unconfirmed(ValueError):
    """The message is meant for the merchant."""


def _signer() -> URLSafeTimedSerializer:
    return URLSafeTimedSerializer(current_app.config["SECRET_KEY"], salt="payout-confirmation")


def _facts(form: PayoutForm) -> list:
    return [current_user.merchant_id, form.phone.data, form.amount.data, form.remarks.data]


def _confirmation(form: PayoutForm) -> str:
    return _signer().dumps([secrets.token_urlsafe(16), *_facts(form)])


def _one_time_key(form: PayoutForm) -> str:
    """The key of a confirmation we issued, recently, for this merchant and exactly these facts."""
    # Expiring well before the idempotency record does, a resent confirmation always meets its record.
    max_age = min(REVIEW_MINUTES * 60, idempotency.ttl().total_seconds())
    try:
        key, *facts = _signer().loads((form.confirmation.data or "")[:1000], max_age=max_age)
    except SignatureExpired:
        raise Unconfirmed(f"This review is more than {REVIEW_MINUTES} minutes old: review the payout again.") from None
    except (BadSignature, ValueError, TypeError):
        raise Unconfirmed("Review the payout before sending it.") from None
    if facts != _facts(form) or not isinstance(key, str):
        raise Unconfirmed("The details changed after you reviewed them: review the payout again.")
    return key


def _recent(kind: str) -> list[Payment]:
    newest = Payment.for_merchant(current_user.merchant_id).filter(Payment.kind == kind)
    return newest.order_by(Payment.created_at.desc(), Payment.id.desc()).limit(RECENT).all()


@bp.after_request
def _vary(response):
    response.vary.add("HX-Request")  # page or fragment, by is_htmx()
    return response


@bp.get("/payouts")
@login_required
def index():
    return _page(PayoutForm(), 200)


def _page(form: PayoutForm, status: int, **extra):
    context = {"payouts": _recent("b2c"), "receipts": _recent("c2b"), **extra}
    configured = current_user.merchant.has_daraja_initiator
    return render_template("payouts/index.html", form=form, configured=configured, **context), status


def _area(form: PayoutForm, status: int, **extra):
    """The form (or review) and the recent payouts: what the review's Send swaps."""
    if is_htmx():
        return render_template("payouts/_area.html", form=form, payouts=_recent("b2c"), **extra), status
    return _page(form, status, **extra)


@bp.post("/payouts/confirm")
@login_required
def confirm():
    """The review before money leaves: the facts read back, with a one-time key."""
    form = PayoutForm()
    if request.form.get("edit"):  # "Change" on the review: the form again, as filled in
        return _form(form, 200)
    if not form.validate_on_submit():
        return _form(form, 422)
    if not current_user.merchant.has_daraja_initiator:
        form.form_errors.append(NOT_CONFIGURED)
        return _form(form, 422)
    form.confirmation.data = _confirmation(form)
    review = {"payee_sees": current_user.merchant.name}
    if is_htmx():
        return render_template("payouts/_confirm.html", form=form, **review)
    return _page(form, 200, confirming=True, **review)


def _form(form: PayoutForm, status: int):
    if is_htmx():
        return render_template("payouts/_form.html", form=form), status
    return _page(form, status)


@bp.post("/payouts")
@login_required
def send():
    form = PayoutForm()
    if not form.validate_on_submit():
        return _area(form, 422)
    try:
        key = _one_time_key(form)
    except Unconfirmed as exc:
        form.form_errors.append(str(exc))
        return _area(form, 422)
    claim = idempotency.claim(current_user.merchant_id, API, key, _facts(form))
    if claim.state != "new":  # sent already (a double click, a resent form): show where it stands
        earlier = Payment.get_for_merchant(current_user.merchant_id, kind="b2c", api="portal", idempotency_key=key)
        return _sent(earlier, already=True)
    try:
        payout = b2c.request_payout(
            current_user.merchant,
            phone=form.phone.data,
            amount=form.amount.data * 100,
            remarks=form.remarks.data,
            occasion=None,
            api="portal",
            source="portal",
            idempotency_key=key,
        )
    except errors.NotConfigured:
        idempotency.release(claim.record)
        form.form_errors.append(NOT_CONFIGURED)
        return _area(form, 422)
    except BaseException:
        idempotency.release(claim.record)
        raise
    idempotency.complete(claim.record, 200, {"payment_id": payout.id})
    return _sent(payout)


def _sent(payout: Payment | None, already: bool = False):
    """A fresh form and the list (htmx), or back to the page with a notice (a plain form). The
    payout is None only when a concurrent first send has not committed it yet."""
    if is_htmx():
        return _area(PayoutForm(formdata=None), 200, sent=payout, already=already)
    if already:
        flash("That payout was already sent: it is in the list below.")
    else:
        flash(f"Payout {payout.reference} to {payout.phone} queued. It updates below as M-Pesa answers.")
    return redirect(url_for("payouts.index"), 303)


@bp.get(f"/payouts/<int(max={MAX_ID}):payment_id>/row")
@login_required
def row(payment_id: int):
    """One payout, polled until final: 286 (polling's stop) with the final markup."""
    payout = Payment.get_for_merchant_or_404(current_user.merchant_id, payment_id)
    return render_template("payouts/_row.html", p=payout), (STOP_POLLING if payout.is_final else 200)


@bp.get("/payouts/receipts")
@login_required
def receipts():
    return render_template("payouts/_receipts.html", receipts=_recent("c2b"))


@bp.app_template_global()
def payout_name(status: str) -> str:
    return b2c.name_of(status)
