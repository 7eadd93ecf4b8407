"""Escrow, the portal's page: the merchant's held bookings payments (held first), released to a
teacher or refunded to the payer, each after a confirmation that says exactly what will be paid
and what kept. The confirmation is signed and bound to those facts and to the escrow's attempt
count, so a stale or altered one is reviewed again; the service pays once however often it is
sent. Rows being released poll until their payout settles."""

import re

from flask import Blueprint, abort, current_app, flash, redirect, render_template, request, url_for
from flask_login import current_user, login_required
from flask_wtf import FlaskForm
from itsdangerous import BadSignature, SignatureExpired, URLSafeTimedSerializer
from sqlalchemy import case
from sqlalchemy.orm import joinedload
from wtforms import HiddenField, StringField
from wtforms.validators import DataRequired, InputRequired, StopValidation, ValidationError

from portal.models import Escrow, EscrowStatus
from portal.services import errors, escrow
from portal.services.phones import InvalidPhone, normalise_safaricom
from portal.web.forms import strip
from portal.web.htmx import STOP_POLLING, is_htmx

E = EscrowStatus
bp = Blueprint("escrow", __name__)
SHOWN = 100  # escrows listed
REVIEW_MINUTES = 15
ORDER = case({E.HELD: 0, E.FAILED: 1, E.RELEASING: 2, E.RELEASED: 3, E.REFUNDED: 4}, value=Escrow.status, else_=5)
RAIL_NAMES = {escrow.PAYSTACK: "Paystack transfer to M-Pesa", escrow.MPESA: "M-Pesa B2C from your shortcode"}
NOT_SET_UP = {
    escrow.PAYSTACK: "Paystack is not set up: add your Paystack secret key in Settings.",
    escrow.MPESA: "M-Pesa payouts are not set up: add the initiator and Safaricom's certificate in Settings.",
}


class KesField(StringField):
    """KES as people type them ("1500", "1,500", "1500.50"); `data` is cents."""

    unreadable = "Enter the amount in KES, with at most two decimals (for example 1500 or 1500.50)."

    def process_formdata(self, valuelist):
        self.data = None
        if not valuelist or not valuelist[0].strip():
            return  # InputRequired says what is missing
        found = re.fullmatch(r"([0-9]{1,9})(?:\.([0-9]{1,2}))?", re.sub(r"[\s,]", "", valuelist[0]))
        if found is None:
            raise ValueError(self.unreadable)
        self.data = int(found[1]) * 100 + int((found[2] or "0").ljust(2, "0"))

    def pre_validate(self, form):
        if self.process_errors:
            raise StopValidation()

    def _value(self) -> str:
        if self.raw_data:
            return self.raw_data[0]
        return "" if self.data is None else kes_text(self.data)


def kes_text(cents: int) -> str:
    """4205000 -> "42050", 4205050 -> "42050.50": what the amount box shows."""
    whole, part = divmod(cents, 100)
    return f"{whole}" if part == 0 else f"{whole}.{part:02d}"


class ReleaseForm(FlaskForm):
    phone = StringField(
        "Teacher's M-Pesa number",
        filters=[strip],
        validators=[DataRequired("Enter the M-Pesa number of the teacher to pay.")],
    )
    amount = KesField("Amount to pay (KES)", validators=[InputRequired("Enter the amount to pay the teacher.")])
    confirmation = HiddenField()

    def validate_phone(self, field):
        try:
            field.data = normalise_safaricom(field.data, short_form=True)
        except InvalidPhone as exc:
            raise ValidationError(f"{exc}. Example: 0712 345 678.") from None

    def validate_amount(self, field):
        if field.data is not None and field.data <= 0:
            raise ValidationError("The amount must be more than zero.")


class RefundForm(FlaskForm):
    """Only its CSRF token: what is refunded is the escrow's whole held payment."""


class Unconfirmed(ValueError):
    """The message is meant for the merchant."""


def _signer() -> URLSafeTimedSerializer:
    return URLSafeTimedSerializer(current_app.config["SECRET_KEY"], salt="escrow-release")


def _facts(row: Escrow, form: ReleaseForm) -> list:
    return [current_user.merchant_id, row.id, row.attempts, form.phone.data, form.amount.data]


def _check_confirmation(row: Escrow, form: ReleaseForm) -> None:
    try:
        facts = _signer().loads((form.confirmation.data or "")[:1000], max_age=REVIEW_MINUTES * 60)
    except SignatureExpired:
        raise Unconfirmed(f"This review is more than {REVIEW_MINUTES} minutes old: review the release again.") from None
    except (BadSignature, ValueError, TypeError):
        raise Unconfirmed("Review the release before confirming it.") from None
    if facts != _facts(row, form):
        raise Unconfirmed("The details changed after you reviewed them: review the release again.")


def _mine(escrow_id: int) -> Escrow:
    row = Escrow.for_merchant(current_user.merchant_id).filter(Escrow.id == escrow_id).first()
    if row is None:
        abort(404)
    return row


def _rows() -> list[Escrow]:
    query = Escrow.for_merchant(current_user.merchant_id).options(joinedload(Escrow.payment), joinedload(Escrow.payout))
    return (
        query.order_by(ORDER, Escrow.refund_due.desc(), Escrow.created_at.desc(), Escrow.id.desc()).limit(SHOWN).all()
    )


@bp.after_request
def _vary(response):
    response.vary.add("HX-Request")  # page or fragment, by is_htmx()
    return response


@bp.app_template_global()
def escrow_rail_name(rail: str | None) -> str:
    return RAIL_NAMES.get(rail or "", "")


def _page(status: int = 200, panel: str | None = None, **context):
    chosen = escrow.payout_rail(current_user.merchant)
    body = render_template("escrow/index.html", rows=_rows(), payout_rail=chosen, panel=panel, **context)
    return body, status


def _panel(template: str, status: int = 200, **context):
    """A step of a release or refund: the panel alone (htmx), or the page around it."""
    if is_htmx():
        return render_template(template, **context), status
    return _page(status, panel=template, **context)


def _done(message: str):
    """After a release or refund: the list and an empty panel (htmx), or back to the page."""
    if is_htmx():
        return render_template("escrow/_area.html", rows=_rows(), panel=None, notice=message)
    flash(message)
    return redirect(url_for("escrow.index"), 303)


@bp.get("/escrow")
@login_required
def index():
    return _page()


@bp.get("/escrow/<int:escrow_id>/row")
@login_required
def row(escrow_id: int):
    """One escrow, polled while its release settles: 286 (polling's stop) once it cannot change."""
    found = _mine(escrow_id)
    final = found.status in (E.RELEASED, E.REFUNDED)
    return render_template("escrow/_row.html", e=found), (STOP_POLLING if final else 200)


@bp.get("/escrow/<int:escrow_id>/release")
@login_required
def release_form(escrow_id: int):
    """The release form: the teacher's number and the amount (the whole held amount unless changed)."""
    found = _mine(escrow_id)
    form = ReleaseForm(
        formdata=None, data={"phone": found.payee_phone, "amount": found.released_amount or found.amount}
    )
    return _panel("escrow/_release_form.html", e=found, form=form)


def _problem(found: Escrow, amount: int) -> tuple[str | None, str | None]:
    """(the rail, None) when the release can go, else (None, what is wrong) in the merchant's words."""
    try:
        return escrow.check_release(current_user.merchant, found, amount), None
    except escrow.EscrowError as exc:
        return None, str(exc)
    except errors.NotConfigured:
        return None, NOT_SET_UP[escrow.payout_rail(current_user.merchant)]


@bp.post("/escrow/<int:escrow_id>/release/confirm")
@login_required
def release_confirm(escrow_id: int):
    """The review before money leaves: who is paid, how much, by which rail, and what is kept."""
    found = _mine(escrow_id)
    form = ReleaseForm()
    if request.form.get("edit"):  # "Change" on the review: the form again, as filled in
        return _panel("escrow/_release_form.html", e=found, form=form)
    if not form.validate_on_submit():
        return _panel("escrow/_release_form.html", 422, e=found, form=form)
    rail, problem = _problem(found, form.amount.data)
    if problem:
        form.form_errors.append(problem)
        return _panel("escrow/_release_form.html", 422, e=found, form=form)
    form.confirmation.data = _signer().dumps(_facts(found, form))
    kept = found.amount - form.amount.data
    return _panel("escrow/_release_confirm.html", e=found, form=form, rail=rail, kept=kept)


@bp.post("/escrow/<int:escrow_id>/release")
@login_required
def release(escrow_id: int):
    found = _mine(escrow_id)
    form = ReleaseForm()
    if found.status in (E.RELEASING, E.RELEASED):  # a double click, a resent form
        return _done(f"The escrow of booking {found.booking_id} is already {found.status}: nothing more was sent.")
    if not form.validate_on_submit():
        return _panel("escrow/_release_form.html", 422, e=found, form=form)
    try:
        _check_confirmation(found, form)
    except Unconfirmed as exc:
        form.form_errors.append(str(exc))
        return _panel("escrow/_release_form.html", 422, e=found, form=form)
    merchant = current_user.merchant
    try:
        done = escrow.release_escrow(merchant, found.id, form.phone.data, form.amount.data, "portal")
    except escrow.AlreadyReleased as exc:
        return _done(f"{exc}: nothing more was sent.")
    except (escrow.EscrowError, errors.NotConfigured) as exc:
        problem = NOT_SET_UP[escrow.payout_rail(merchant)] if isinstance(exc, errors.NotConfigured) else str(exc)
        form.form_errors.append(problem)
        return _panel("escrow/_release_form.html", 422, e=found, form=form)
    return _done(f"Releasing booking {done.booking_id} to {done.phone}. It updates below as the payout settles.")


@bp.get("/escrow/<int:escrow_id>/refund")
@login_required
def refund_confirm(escrow_id: int):
    """The review before a refund: the payer gets the whole held payment back."""
    found = _mine(escrow_id)
    return _panel("escrow/_refund_confirm.html", e=found, form=RefundForm())


@bp.post("/escrow/<int:escrow_id>/refund")
@login_required
def refund(escrow_id: int):
    found = _mine(escrow_id)
    form = RefundForm()
    if not form.validate_on_submit():
        form.form_errors.append("The form expired: review the refund again.")
        return _panel("escrow/_refund_confirm.html", 422, e=found, form=form)
    try:
        escrow.refund(current_user.merchant, found.id, "portal")
    except escrow.NotRefundable as exc:
        return _done(f"{exc}. Nothing was refunded.")
    except (escrow.EscrowError, errors.NotConfigured) as exc:
        problem = NOT_SET_UP[escrow.PAYSTACK] if isinstance(exc, errors.NotConfigured) else str(exc)
        form.form_errors.append(problem)
        return _panel("escrow/_refund_confirm.html", 422, e=found, form=form)
    return _done(
        f"Refund of booking {found.booking_id} asked of Paystack: the payer gets it back once Paystack processed it."
    )
