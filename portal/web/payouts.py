"""Payouts (B2C) and C2B receipts. A payout is confirmed before it is sent: the merchant sees
the amount, the phone and the name the customer will see, then sends. The confirmation
carries a one-time key, so a double click or a resent form pays once. Rows poll until final."""

import secrets

from flask import Blueprint, render_template
from flask_login import current_user, login_required
from flask_wtf import FlaskForm
from wtforms import HiddenField, StringField
from wtforms.validators import DataRequired, InputRequired, Length, NumberRange

from portal.models import Payment
from portal.services import errors, idempotency
from portal.services.mpesa import b2c
from portal.services.phones import InvalidPhone, normalise_safaricom
from portal.web.htmx import STOP_POLLING, is_htmx
from portal.web.payments import ShillingsField

bp = Blueprint("payouts", __name__)
RECENT = 20


class PayoutForm(FlaskForm):
    phone = StringField("Recipient's phone", validators=[DataRequired("Enter the M-Pesa number to pay.")])
    amount = ShillingsField(
        "Amount (KES)",
        validators=[
            InputRequired("Enter the amount in whole shillings."),
            NumberRange(b2c.MINIMUM, b2c.MAXIMUM, f"M-Pesa pays out from {b2c.MINIMUM} to {b2c.MAXIMUM:,} shillings."),
        ],
    )
    remarks = StringField(
        "What it is for",
        validators=[DataRequired("Say what the payout is for."), Length(2, 100, "Use 2 to 100 characters.")],
    )
    once = HiddenField()

    def validate_phone(self, field):
        try:
            field.data = normalise_safaricom(field.data)
        except InvalidPhone as exc:
            raise ValueError(f"{exc}. Example: 0712 345 678.") from None


def _context(**extra) -> dict:
    merchant_id = current_user.merchant_id
    newest = Payment.for_merchant(merchant_id).order_by(Payment.created_at.desc(), Payment.id.desc())
    return {
        "payouts": newest.filter(Payment.kind == "b2c").limit(RECENT).all(),
        "receipts": newest.filter(Payment.kind == "c2b").limit(RECENT).all(),
        "names": b2c.NAMES,
        **extra,
    }


@bp.get("/payouts")
@login_required
def index():
    return render_template("payouts/index.html", form=PayoutForm(), **_context())


@bp.post("/payouts/confirm")
@login_required
def confirm():
    """The check before money leaves: the same form, read back, with a one-time key."""
    form = PayoutForm()
    if not form.validate_on_submit():
        return _area(form, 422)
    form.once.data = secrets.token_urlsafe(16)
    return render_template("payouts/_confirm.html", form=form, payee_sees=current_user.merchant.name)


@bp.post("/payouts")
@login_required
def send():
    form = PayoutForm()
    if not form.validate_on_submit() or not form.once.data or len(form.once.data) > 64:
        return _area(form, 422)
    payload = {"phone": form.phone.data, "amount": form.amount.data, "remarks": form.remarks.data}
    claim = idempotency.claim(current_user.merchant_id, "portal-payout", form.once.data, payload)
    if claim.state != "new":  # sent already (a double click, a resent form): show where it stands
        return _area(PayoutForm(formdata=None), 200, sent_already=True)
    try:
        payout = b2c.request_payout(
            current_user.merchant,
            phone=form.phone.data,
            amount=form.amount.data * 100,
            remarks=form.remarks.data,
            occasion=None,
            api="portal",
            source="portal",
            idempotency_key=form.once.data,
        )
    except errors.NotConfigured:
        idempotency.release(claim.record)
        form.form_errors.append(
            "Payouts are not set up yet: add the initiator name, its password and Safaricom's certificate in Settings."
        )
        return _area(form, 422)
    except BaseException:
        idempotency.release(claim.record)
        raise
    idempotency.complete(claim.record, 200, {"payment_id": payout.id})
    return _area(PayoutForm(formdata=None), 200, sent=payout)


def _area(form: PayoutForm, status: int, **extra):
    template = "payouts/_area.html" if is_htmx() else "payouts/index.html"
    return render_template(template, form=form, **_context(**extra)), status


@bp.get("/payouts/<int:payment_id>/row")
@login_required
def row(payment_id: int):
    p = Payment.get_for_merchant_or_404(current_user.merchant_id, payment_id)
    html = render_template("payouts/_row.html", p=p, names=b2c.NAMES)
    return html, (STOP_POLLING if p.is_final else 200)


@bp.get("/payouts/receipts")
@login_required
def receipts():
    return render_template("payouts/_receipts.html", **_context())


@bp.app_template_global()
def payout_name(status: str) -> str:
    return b2c.name_of(status)
