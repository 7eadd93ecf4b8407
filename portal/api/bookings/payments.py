"""The bookings document's payment routes: initialize (a Paystack checkout), mpesa and
mpesa/direct (an M-Pesa prompt through Paystack), verify (ask Paystack now), retry, cancel and
a payer's history. `GET /api/payments/status/{reference}` is shared with the water document and
lives on its blueprint (api/water.py), which answers a bookings payment with `serialise` below."""

from flask import g, request

from portal import openapi
from portal.api import envelope
from portal.api.bookings import bp, schemas
from portal.providers.paystack import PaystackError, PaystackUnavailable
from portal.services import bookings, errors
from portal.services.paystack import charges
from portal.timeutil import epoch_ms

REFUSALS = {
    400: openapi.Answer(envelope.Failure, "Missing or invalid parameters"),
    404: openapi.Answer(envelope.Failure, "Transaction not found"),
}
PROVIDER_FAILURES = {
    502: openapi.Answer(envelope.Failure, "Paystack refused the request"),
    503: openapi.Answer(envelope.Failure, "Paystack is unreachable or not set up for this merchant"),
    504: openapi.Answer(envelope.Failure, "Paystack did not answer in time; the payment settles when it reports"),
}


def name_of(payment) -> str:
    return bookings.STATUS_NAMES[payment.status]


def method_of(payment) -> str:
    if payment.kind == charges.CHARGE or (payment.meta or {}).get("channel") == "mobile_money":
        return "mpesa"
    return "card" if (payment.meta or {}).get("channel") == "card" else "paystack"


def serialise(payment) -> dict:
    """The document's "Get Payment Status" data."""
    return {
        "reference": payment.reference,
        "bookingId": (payment.meta or {}).get("bookingId"),
        "email": payment.email,
        "phone": payment.phone,
        "amount": payment.amount_major,
        "status": name_of(payment),
        "paymentMethod": method_of(payment),
        "createdAt": epoch_ms(payment.created_at),
        "completedAt": epoch_ms(payment.completed_at) if payment.is_final else None,
    }


def status_data(payment) -> dict | None:
    """The shared status route's answer for a bookings payment; an escrow payout is not one."""
    return serialise(payment) if payment.kind in bookings.KINDS else None


def _refused(exc: Exception):
    if isinstance(exc, charges.TestModeRefused):
        return envelope.fail(400, str(exc), "VALIDATION_ERROR")
    if isinstance(exc, bookings.Refused):
        return envelope.fail(exc.status, exc.message, exc.code)
    status, code, message = envelope.payment_refused(exc)
    return envelope.fail(status, message, code)


def _payment(reference: str):
    try:
        schemas.ReferencePath.model_validate({"reference": reference})
    except ValueError:
        return None
    return bookings.payment_of(merchant(), reference)


def _not_found():
    return envelope.fail(404, "Transaction not found", "TRANSACTION_NOT_FOUND")


def merchant():
    return g.merchant


STARTING = (errors.PaymentError, charges.TestModeRefused)


@openapi.operation(
    "Start a Paystack checkout (card or M-Pesa on Paystack's page) for a booking",
    body=schemas.Initialize,
    responses={200: schemas.InitializedAnswer, 400: REFUSALS[400], **PROVIDER_FAILURES},
)
@bp.post("/initialize")
def initialize():
    form = envelope.parse_body(schemas.Initialize)
    try:
        started = bookings.initialize(
            merchant(),
            email=form.email,
            amount=form.amount,
            booking_id=form.bookingId,
            metadata=form.metadata,
            callback_url=form.callbackUrl,
        )
    except STARTING as exc:
        return _refused(exc)
    data = {
        "reference": started.payment.reference,
        "access_code": started.access_code,
        "authorization_url": started.authorization_url,
    }
    return envelope.ok(data, "Payment initialized successfully")


def _charge(form, prefix: str, message: str, display_text: str):
    try:
        started = bookings.charge_mpesa(
            merchant(),
            prefix=prefix,
            phone=form.phone,
            email=form.email,
            amount=form.amount * 100,
            booking_id=form.bookingId,
            metadata=getattr(form, "metadata", {}),
        )
    except STARTING as exc:
        return _refused(exc)
    payment = started.payment
    data = {"reference": payment.reference, "status": name_of(payment), "display_text": display_text}
    return envelope.ok(data, message)


@openapi.operation(
    "Prompt the payer's phone for M-Pesa through Paystack (STK push)",
    body=schemas.MpesaCharge,
    responses={200: schemas.ChargedAnswer, 400: REFUSALS[400], 409: envelope.Failure, **PROVIDER_FAILURES},
)
@bp.post("/mpesa")
def mpesa():
    form = envelope.parse_body(schemas.MpesaCharge)
    return _charge(
        form,
        "mpesa",
        "MPesa STK push sent. Please check your phone to complete payment.",
        "Check your phone for payment prompt",
    )


@openapi.operation(
    "Charge the payer's M-Pesa directly (no checkout step; the booking is optional)",
    body=schemas.DirectCharge,
    responses={200: schemas.ChargedAnswer, 400: REFUSALS[400], 409: envelope.Failure, **PROVIDER_FAILURES},
)
@bp.post("/mpesa/direct")
def mpesa_direct():
    form = envelope.parse_body(schemas.DirectCharge)
    return _charge(
        form,
        "mpesa-direct",
        "MPesa payment initiated. Check your phone for the prompt.",
        "Enter your MPesa PIN to complete",
    )


@openapi.operation(
    "Ask Paystack about a payment now (verify) and update it by the answer",
    path=schemas.ReferencePath,
    responses={200: schemas.VerifiedAnswer, **REFUSALS, 502: PROVIDER_FAILURES[502], 503: PROVIDER_FAILURES[503]},
)
@bp.get("/verify/<reference>")
def verify(reference: str):
    payment = _payment(reference)
    if payment is None:
        return _not_found()
    if payment.status in charges.VERIFIABLE:
        try:
            charges.verify_now(payment)
        except (errors.NotConfigured, PaystackError, PaystackUnavailable) as exc:
            return envelope.provider_failure(exc, "verify")
    meta = payment.meta or {}
    data = {
        "status": name_of(payment),
        "amount": payment.amount_major,
        "reference": payment.reference,
        "paid_at": meta.get("paid_at") if payment.status == "completed" else None,
        "channel": meta.get("channel") or ("mobile_money" if payment.kind == charges.CHARGE else None),
    }
    return envelope.ok(data, "Payment verified successfully")


@openapi.operation(
    "Try a failed or cancelled payment again: a new payment linked to it",
    path=schemas.ReferencePath,
    body=schemas.Retry,
    responses={200: schemas.RetriedAnswer, **REFUSALS, 409: envelope.Failure, **PROVIDER_FAILURES},
)
@bp.post("/retry/<reference>")
def retry(reference: str):
    original = _payment(reference)
    if original is None:
        return _not_found()
    form = envelope.parse_body(schemas.Retry)
    try:
        started = bookings.retry(merchant(), original, phone=form.phone, email=form.email)
    except (bookings.Refused, *STARTING) as exc:
        return _refused(exc)
    data = {
        "originalReference": original.reference,
        "newReference": started.payment.reference,
        "retryCount": started.payment.meta["retryCount"],
    }
    return envelope.ok(data, "Payment retry initiated")


@openapi.operation(
    "Cancel a pending payment (a success that still arrives is recorded and flagged for refund)",
    path=schemas.ReferencePath,
    body=schemas.Cancel,
    responses={200: schemas.CancelledAnswer, **REFUSALS, 409: envelope.Failure},
)
@bp.post("/cancel/<reference>")
def cancel(reference: str):
    payment = _payment(reference)
    if payment is None:
        return _not_found()
    form = envelope.parse_body(schemas.Cancel)
    try:
        bookings.cancel(payment, form.reason)
    except bookings.Refused as exc:
        return _refused(exc)
    return envelope.ok(
        {"reference": payment.reference, "cancelledAt": epoch_ms(payment.completed_at)},
        "Payment cancelled successfully",
    )


@openapi.operation(
    "A payer's bookings payments, newest first (the payer is metadata.user_id of their payments)",
    path=schemas.UserPath,
    query=schemas.HistoryQuery,
    responses={200: schemas.HistoryAnswer, 400: REFUSALS[400]},
)
@bp.get("/history/<user_id>")
def history(user_id: str):
    envelope.validate(schemas.UserPath, {"userId": user_id})
    query = envelope.validate(schemas.HistoryQuery, request.args.to_dict())
    rows, total = bookings.history(merchant(), user_id, limit=query.limit, offset=query.offset, status=query.status)
    transactions = [
        {
            "reference": p.reference,
            "amount": p.amount_major,
            "status": name_of(p),
            "createdAt": epoch_ms(p.created_at),
            "bookingId": (p.meta or {}).get("bookingId"),
        }
        for p in rows
    ]
    return envelope.ok({"transactions": transactions, "total": total, "limit": query.limit, "offset": query.offset})
