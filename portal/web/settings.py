"""Portal view for the merchant's provider credentials (Daraja, its B2C initiator, Paystack, Africa's
Talking for SMS) and its water pricing. Secrets are encrypted at rest by their columns and never
shown back in full (the initiator password not at all); an empty secret input, or an empty
certificate box, keeps the stored one. Pricing is checked by the service's own model
(services/water_pricing.py)."""

import re

from flask import Blueprint, flash, redirect, render_template, url_for
from flask_login import current_user, login_required
from flask_wtf import FlaskForm
from pydantic import ValidationError as PricingRefused
from wtforms import SelectChoice, SelectField, StringField, TextAreaField
from wtforms.validators import AnyOf, InputRequired, Length, Optional, Regexp, ValidationError

from portal.extensions import db
from portal.services import escrow, water_pricing
from portal.services.links import external_url
from portal.services.mpesa.client import describe_certificate
from portal.services.sms_reports import delivery_report_url
from portal.web.forms import WholeNumberField, strip
from portal.web.htmx import hx_redirect, is_htmx

bp = Blueprint("settings", __name__)

PAYBILL, BUY_GOODS = "CustomerPayBillOnline", "CustomerBuyGoodsOnline"
SECRET_FIELDS = (
    "daraja_consumer_key",
    "daraja_consumer_secret",
    "daraja_passkey",
    "paystack_secret_key",
    "daraja_initiator_password",
    "at_api_key",
)
WRITE_ONLY = ("daraja_initiator_password",)  # not even its last characters are shown
PLAIN_FIELDS = (
    "daraja_shortcode",
    "daraja_transaction_type",
    "daraja_party_b",
    "daraja_initiator_name",
    "paystack_public_key",
    "at_username",
    "at_sender_id",
)
# The STK callback addresses, one per API that starts pushes (endpoints of webhooks/daraja.py).
CALLBACKS = (
    ("Checkout API (/initiate_payment)", "daraja_webhooks.checkout_stk"),
    ("Payments gateway API", "daraja_webhooks.gateway_stk"),
    ("Water API", "daraja_webhooks.water_stk"),
)
DARAJA_SECRETS = SECRET_FIELDS[:3]
SHOWN_TAIL = 4
MIN_LENGTH_TO_SHOW_TAIL = 12  # below this, four characters would give away too much of the secret


def pem_text(value):
    """A form filter: a pasted PEM file as it is stored, Unix line ends and one final newline
    (browsers send a textarea's lines with CRLF)."""
    if not isinstance(value, str) or not value.strip():
        return value
    return value.replace("\r\n", "\n").strip() + "\n"


def _secret(label: str, *validators) -> StringField:
    # A text input, not a password one: browsers would otherwise autofill the portal password here.
    return StringField(
        label,
        filters=[strip],
        validators=[
            Optional(),
            Length(max=256, message="That is too long to be a real key; check what you pasted."),
            Regexp(r"^[\x21-\x7e]+$", message="That has spaces or symbols a real key does not have; copy it again."),
            *validators,
        ],
    )


class SettingsForm(FlaskForm):
    daraja_consumer_key = _secret("Consumer key")
    daraja_consumer_secret = _secret("Consumer secret")
    daraja_shortcode = StringField("Business number (shortcode)", filters=[strip])
    daraja_passkey = _secret("Passkey (Lipa na M-Pesa Online)")
    daraja_transaction_type = SelectField(
        "How customers pay you",
        validate_choice=False,
        choices=[
            SelectChoice(PAYBILL, "Paybill: customers pay to your business number"),
            SelectChoice(BUY_GOODS, "Buy Goods: customers pay to a till number"),
        ],
        validators=[AnyOf([PAYBILL, BUY_GOODS], message="Choose Paybill or Buy Goods.")],
    )
    daraja_party_b = StringField(
        "Till number",
        filters=[strip],
        validators=[
            Optional(),
            Regexp(
                r"^[0-9]{5,7}$",
                message="The till number is 5 to 7 digits, numbers only. "
                "Leave it empty if customers pay to your business number.",
            ),
        ],
    )
    paystack_secret_key = _secret(
        "Paystack secret key",
        Regexp(
            r"^sk_(test|live)_[A-Za-z0-9]+$",
            message="A Paystack secret key starts with sk_test_ or sk_live_ followed by letters and numbers. "
            "Copy it from your Paystack dashboard under Settings, API Keys & Webhooks "
            "(not the public key, which starts with pk_).",
        ),
    )
    paystack_public_key = StringField(
        "Paystack public key",
        filters=[strip],
        validators=[
            Optional(),
            Regexp(
                r"^pk_(test|live)_[A-Za-z0-9]{1,100}$",
                message="A Paystack public key starts with pk_test_ or pk_live_ followed by letters and numbers "
                "(the secret key, sk_, goes in the box above).",
            ),
        ],
    )

    daraja_initiator_name = StringField(
        "Initiator name (API operator)",
        filters=[strip],
        validators=[Length(max=64, message="An initiator name is at most 64 characters.")],
    )
    daraja_initiator_password = StringField(
        "Initiator password",
        filters=[strip],
        validators=[
            Optional(),
            Length(max=128, message="That is too long for an initiator password."),
            Regexp(r"^[\x21-\x7e]+$", message="An initiator password has no spaces or accents; type it again."),
        ],
    )
    daraja_certificate = TextAreaField(
        "Safaricom's certificate (PEM)",
        filters=[pem_text],
        validators=[Optional(), Length(max=16384, message="That is longer than any certificate; paste the one file.")],
    )

    at_username = StringField("Username", filters=[strip])
    at_api_key = _secret("API key")
    at_sender_id = StringField(
        "Sender ID",
        filters=[strip],
        validators=[
            Optional(),
            Regexp(
                r"^(?:[A-Za-z0-9][A-Za-z0-9 ._-]{0,10}|[0-9]{3,8})$",
                message="A sender ID is up to 11 letters or digits (or a short code of digits), "
                "exactly as Africa's Talking registered it for you.",
            ),
        ],
    )

    def __init__(
        self, *args, stored_daraja: bool = False, stored_password: bool = False, stored_at_key: bool = False, **kwargs
    ):
        super().__init__(*args, **kwargs)
        self.stored_daraja = stored_daraja
        self.stored_password = stored_password
        self.stored_at_key = stored_at_key

    def validate_at_username(self, field):
        """Optional, until there is an API key to go with it (and the other way round)."""
        if not field.data:
            if self.at_api_key.data:
                raise ValidationError("Enter the username of the Africa's Talking app this API key belongs to.")
            return
        if not re.fullmatch(r"[A-Za-z0-9_.-]{1,64}", field.data):
            raise ValidationError(
                "An Africa's Talking username is letters, digits, dots, dashes or underscores; "
                "copy it from your app's page (sandbox is the test one)."
            )
        if not (self.stored_at_key or self.at_api_key.data):
            raise ValidationError("Paste the API key of this Africa's Talking app too: SMS need both.")

    def validate_daraja_initiator_name(self, field):
        """Optional, until there is a password to go with it."""
        if field.data:
            if not re.fullmatch(r"[\x21-\x7e]+", field.data):
                raise ValidationError("An initiator name has no spaces; copy it from the M-Pesa org portal.")
        elif self.stored_password or self.daraja_initiator_password.data:
            raise ValidationError("Enter the initiator name: payouts need it with the password.")

    def validate_daraja_certificate(self, field):
        if field.data:
            try:
                describe_certificate(field.data)
            except ValueError:
                raise ValidationError(
                    "That is not a certificate. Paste the whole certificate file for your environment (sandbox or "
                    "production) from the Daraja portal, from -----BEGIN CERTIFICATE----- to -----END CERTIFICATE-----."
                ) from None

    def validate_daraja_shortcode(self, field):
        """Optional for a Paystack-only merchant, required as soon as there are Daraja keys."""
        if field.data:
            if not re.fullmatch(r"[0-9]{5,7}", field.data):
                raise ValidationError("The business number is 5 to 7 digits, numbers only, for example 174379.")
        elif self.stored_daraja or any(getattr(self, name).data for name in DARAJA_SECRETS):
            raise ValidationError(
                "Enter your M-Pesa business number (paybill or store number): payments need it with your Daraja keys."
            )


def stored_certificate(pem: str | None) -> dict | None:
    """What the page says about the stored certificate: whose it is, until when, its fingerprint."""
    if not pem:
        return None
    try:
        info = describe_certificate(pem)
    except ValueError:
        return {"unreadable": True}
    return {"subject": info.subject, "expires": info.expires, "fingerprint": info.fingerprint}


def mask(secret: str | None) -> str | None:
    """•••••••• plus the last four characters, so a merchant can tell which key is stored."""
    if not secret:
        return None
    return "••••••••" + (secret[-SHOWN_TAIL:] if len(secret) >= MIN_LENGTH_TO_SHOW_TAIL else "")


def _shillings(label: str, missing: str) -> WholeNumberField:
    return WholeNumberField(
        label, [InputRequired(missing)], unreadable="Enter whole shillings, digits only (for example 5)."
    )


class PricingForm(FlaskForm):
    """Read as typed here; whether it can sell is WaterPricing's to say."""

    price_per_liter = _shillings("Price of a liter (KES)", "Enter the price of one liter in whole shillings.")
    rounding = SelectField(
        "When an amount is not a whole number of liters",
        validate_choice=False,
        choices=[
            SelectChoice("nearest", "To the nearest liter (half a liter rounds up)"),
            SelectChoice("down", "Down: a customer never pays more than the amount asked"),
            SelectChoice("up", "Up: a customer pays for the next whole liter"),
        ],
    )
    min_amount = _shillings("Smallest sale (KES)", "Enter the smallest amount a customer may pay.")
    max_amount = _shillings("Largest sale (KES)", "Enter the largest amount a customer may pay at once.")


PRICING_FIELDS = ("price_per_liter", "rounding", "min_amount", "max_amount")


def _stored_pricing_form() -> PricingForm:
    return PricingForm(formdata=None, data=water_pricing.pricing_of(current_user.merchant).model_dump())


class EscrowRailForm(FlaskForm):
    """How escrow releases pay teachers (services/escrow.py: Merchant.settings["escrow_payout_rail"])."""

    escrow_payout_rail = SelectField(
        "Pay teachers by",
        validate_choice=False,
        choices=[
            SelectChoice("", "Paystack when its secret key is set, else M-Pesa (the default)"),
            SelectChoice(escrow.PAYSTACK, "Paystack transfer to the teacher's M-Pesa, from your Paystack balance"),
            SelectChoice(escrow.MPESA, "M-Pesa B2C from your shortcode (whole shillings, from KES 10)"),
        ],
        validators=[AnyOf(["", *escrow.RAILS], message="Choose how releases are paid.")],
    )


def _stored_rail_form() -> EscrowRailForm:
    chosen = (current_user.merchant.settings or {}).get(escrow.SETTINGS_KEY) or ""
    return EscrowRailForm(formdata=None, data={"escrow_payout_rail": chosen})


def _render(form: SettingsForm | None = None, status: int = 200, *, pricing_form: PricingForm | None = None):
    merchant = current_user.merchant
    if form is None:  # only the plain fields are prefilled: a secret never goes back into an input
        form = SettingsForm(formdata=None, data={name: getattr(merchant, name) for name in PLAIN_FIELDS})
    masked = {name: mask(getattr(merchant, name)) for name in SECRET_FIELDS}
    masked.update({name: "••••••••" for name in WRITE_ONLY if getattr(merchant, name)})
    context = {
        "form": form,
        "pricing_form": pricing_form or _stored_pricing_form(),
        "rail_form": _stored_rail_form(),
        "rail": escrow.payout_rail(merchant),
        "masked": masked,
        "certificate": stored_certificate(merchant.daraja_certificate),
        "delivery_reports": delivery_report_url(merchant.id),
    }
    if is_htmx():
        return render_template("settings/_form.html", **context), status, {"Vary": "HX-Request"}
    callbacks = [(label, external_url(endpoint)) for label, endpoint in CALLBACKS]
    return render_template("settings/index.html", callbacks=callbacks, **context), status, {"Vary": "HX-Request"}


@bp.get("/settings")
@login_required
def index():
    return _render()


@bp.post("/settings")
@login_required
def save():
    merchant = current_user.merchant
    form = SettingsForm(
        stored_daraja=any(getattr(merchant, name) for name in DARAJA_SECRETS),
        stored_password=bool(merchant.daraja_initiator_password),
        stored_at_key=bool(merchant.at_api_key),
    )
    if not form.validate_on_submit():
        return _render(form, 422)
    for name in PLAIN_FIELDS:
        setattr(merchant, name, getattr(form, name).data or None)
    for name in (*SECRET_FIELDS, "daraja_certificate"):
        if getattr(form, name).data:
            setattr(merchant, name, getattr(form, name).data)
    db.session.commit()
    flash("Settings saved.")
    return hx_redirect(url_for("settings.index"))


@bp.post("/settings/water-pricing")
@login_required
def pricing():
    form = PricingForm()
    if form.validate_on_submit():
        try:
            chosen = water_pricing.WaterPricing.model_validate({name: form[name].data for name in PRICING_FIELDS})
        except PricingRefused as exc:
            for error in exc.errors():
                message = str((error.get("ctx") or {}).get("error") or error["msg"])
                named = error["loc"][0] if error["loc"] else None
                (form[named].errors if named in PRICING_FIELDS else form.form_errors).append(message)
        else:
            water_pricing.save_pricing(current_user.merchant, chosen)
            message = "Water pricing saved. Previews and new payments use it from now on."
            if is_htmx():
                body = render_template("settings/_pricing.html", pricing_form=_stored_pricing_form(), message=message)
                return body, 200, {"Vary": "HX-Request"}
            flash(message)
            return redirect(url_for("settings.index"), 303)
    if is_htmx():
        return render_template("settings/_pricing.html", pricing_form=form), 422, {"Vary": "HX-Request"}
    return _render(status=422, pricing_form=form)


@bp.post("/settings/escrow-rail")
@login_required
def escrow_rail():
    form = EscrowRailForm()
    if not form.validate_on_submit():
        if is_htmx():
            body = render_template("settings/_escrow_rail.html", rail_form=form, rail=None)
            return body, 422, {"Vary": "HX-Request"}
        return _render(status=422)
    escrow.save_payout_rail(current_user.merchant, form.escrow_payout_rail.data or None)
    rail = escrow.payout_rail(current_user.merchant)
    message = f"Escrow releases are now paid by {'Paystack transfer' if rail == escrow.PAYSTACK else 'M-Pesa B2C'}."
    if is_htmx():
        body = render_template("settings/_escrow_rail.html", rail_form=_stored_rail_form(), rail=rail, message=message)
        return body, 200, {"Vary": "HX-Request"}
    flash(message)
    return redirect(url_for("settings.index"), 303)
