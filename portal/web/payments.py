"""The ledger pages: list (filters, search, keyset pages, CSV), one payment with its
timeline and callbacks, and requesting an STK push. Rows poll until they are final."""

import csv
import io
from datetime import date

from flask import Blueprint, Response, flash, redirect, render_template, request, stream_with_context, url_for
from flask_login import current_user, login_required
from flask_wtf import FlaskForm
from wtforms import StringField
from wtforms.validators import (
    DataRequired,
    InputRequired,
    NumberRange,
    Optional,
    Regexp,
    ValidationError,
)

from portal.models import Callback, Payment, PaymentEvent
from portal.services import errors, ledger, mpesa
from portal.services.phones import InvalidPhone, normalise_safaricom
from portal.web.forms import WholeNumberField
from portal.web.htmx import STOP_POLLING, is_htmx

bp = Blueprint("payments", __name__)
RECENT = 10
MAX_AMOUNT = 250_000  # Daraja's per-transaction ceiling (shared/reference/daraja.md §9.5)


def read_filter(args) -> ledger.LedgerFilter:
    """Filters from the query string; values outside the known choices are ignored."""

    def choice(name, allowed):
        value = args.get(name) or None
        return value if value in allowed else None

    def day(name):
        try:
            return date.fromisoformat(args.get(name, ""))
        except ValueError:
            return None

    return ledger.LedgerFilter(
        status=choice("status", ledger.STATUSES),
        rail=choice("rail", ledger.RAILS),
        kind=choice("kind", ledger.KINDS),
        date_from=day("from"),
        date_to=day("to"),
        q=(args.get("q") or "").strip()[:64] or None,
    )


def poll_answer(template: str, payment: Payment, **context):
    """200 while the payment can change; 286 with the final markup once it cannot."""
    html = render_template(template, p=payment, **context)
    return html, (STOP_POLLING if payment.is_final else 200)


@bp.get("/payments")
@login_required
def index():
    f = read_filter(request.args)
    rows, next_cursor = ledger.page(ledger.filtered(current_user.merchant_id, f), request.args.get("after"))
    context = {
        "rows": rows,
        "next_cursor": next_cursor,
        "f": f,
        "statuses": ledger.STATUSES,
        "rails": ledger.RAILS,
        "kinds": ledger.KINDS,
        "args": request.args,
    }
    if is_htmx() and request.headers.get("HX-Target") == "load-more":
        return render_template("payments/_page.html", **context)
    response = Response(render_template("payments/list.html", **context))
    response.headers["Vary"] = "HX-Request"
    return response


@bp.get("/payments/export.csv")
@login_required
def export():
    query = ledger.filtered(current_user.merchant_id, read_filter(request.args))

    def generate():
        buffer = io.StringIO()
        writer = csv.writer(buffer)
        try:
            for row in ledger.csv_rows(query):
                writer.writerow(row)
                yield buffer.getvalue()
                buffer.seek(0)
                buffer.truncate()
        finally:  # end the streaming read (and its server-side cursor) with the last row
            query.session.rollback()

    return Response(
        stream_with_context(generate()),
        mimetype="text/csv",
        headers={"Content-Disposition": 'attachment; filename="payments.csv"'},
    )


@bp.get("/payments/<int:payment_id>")
@login_required
def detail(payment_id: int):
    payment = Payment.get_for_merchant_or_404(current_user.merchant_id, payment_id)
    return render_template("payments/detail.html", p=payment, **_timeline(payment))


@bp.get("/payments/<int:payment_id>/live")
@login_required
def live(payment_id: int):
    payment = Payment.get_for_merchant_or_404(current_user.merchant_id, payment_id)
    return poll_answer("payments/_detail.html", payment, **_timeline(payment))


@bp.get("/payments/<int:payment_id>/row")
@login_required
def row(payment_id: int):
    return poll_answer("payments/_row.html", Payment.get_for_merchant_or_404(current_user.merchant_id, payment_id))


def _timeline(payment: Payment) -> dict:
    return {
        "events": PaymentEvent.query.filter_by(payment_id=payment.id).order_by(PaymentEvent.id).all(),
        "callbacks": Callback.query.filter_by(payment_id=payment.id, merchant_id=payment.merchant_id)
        .order_by(Callback.id)
        .all(),
    }


class ShillingsField(WholeNumberField):
    """Whole shillings as people type them ("1500", "1,500", "1 500")."""

    unreadable = "Enter the amount in whole shillings, without cents (for example 150)."


class PaymentRequestForm(FlaskForm):
    phone = StringField("Customer's phone", validators=[DataRequired("Enter the customer's M-Pesa number.")])
    amount = ShillingsField(
        "Amount (KES)",
        validators=[
            InputRequired("Enter the amount in whole shillings."),
            NumberRange(1, MAX_AMOUNT, f"The amount must be between 1 and {MAX_AMOUNT:,} shillings."),
        ],
    )
    account_reference = StringField(
        "Account reference (optional)",
        validators=[
            Optional(),
            Regexp(
                r"^[A-Za-z0-9][A-Za-z0-9 _.\-]{0,11}\Z",
                message="Use up to 12 letters or digits: the customer sees this on the phone.",
            ),
        ],
    )

    def validate_phone(self, field):
        try:
            field.data = normalise_safaricom(field.data)
        except InvalidPhone as exc:
            raise ValidationError(f"{exc}. Example: 0712 345 678.") from None


@bp.route("/payments/new", methods=["GET", "POST"])
@login_required
def new():
    form = PaymentRequestForm()
    if request.method == "GET":
        return render_template("payments/new.html", form=form, recent=ledger.latest(current_user.merchant_id, RECENT))
    if form.validate_on_submit() and _request_push(form):
        recent = ledger.latest(current_user.merchant_id, RECENT)
        if not is_htmx():
            flash(f"Payment request sent to {recent[0].phone}.")
            return redirect(url_for("payments.new"))
        return render_template(
            "payments/_request_area.html", form=PaymentRequestForm(formdata=None), recent=recent, sent=recent[0]
        )
    template = "payments/_request_area.html" if is_htmx() else "payments/new.html"
    return render_template(template, form=form, recent=ledger.latest(current_user.merchant_id, RECENT)), 422


def _request_push(form: PaymentRequestForm) -> bool:
    """Sends the push; on refusal puts the problem, in a shopkeeper's words, on the form."""
    try:
        mpesa.initiate_stk_push(
            current_user.merchant,
            phone=form.phone.data,
            amount=form.amount.data * 100,
            account_reference=form.account_reference.data or "Payment",
            description="Portal request",
            api="portal",
            source="portal",
        )
        return True
    except errors.SubscriberBusy:
        form.phone.errors.append(
            "This customer already has a payment prompt open. Wait about a minute for it to finish, then try again."
        )
    except errors.NotConfigured:
        form.form_errors.append("M-Pesa is not set up yet: add your Daraja credentials in Settings.")
    except errors.ProviderRejected as exc:
        form.form_errors.append(f"M-Pesa refused the request ({exc}). Check the details and try again.")
    except errors.ProviderUnavailable:
        form.form_errors.append("M-Pesa is not answering right now. Nothing was charged; try again in a minute.")
    except errors.OutcomeUnknown:
        return True  # the row shows it as waiting for M-Pesa's answer
    return False
