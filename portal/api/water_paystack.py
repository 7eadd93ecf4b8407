"""The water API's Paystack routes, on the water blueprint: the merchant's own systems (an API
key) start a hosted checkout for whole liters and verify it; the customer's browser comes back
from the checkout to a public callback that moves no money. Paystack's webhook is
webhooks/paystack.py's. A completed payment gets its code by SMS like an M-Pesa one
(services/otps.py)."""

from flask import g, request, url_for

from portal import openapi
from portal.api import envelope
from portal.api import water_schemas as schemas
from portal.api.water import _not_found, _payment, bp, priced, require_key
from portal.api.water_schemas import WaterReferencePath
from portal.extensions import db
from portal.models import PaymentStatus
from portal.providers.paystack import PaystackError, PaystackUnavailable
from portal.services import errors, water
from portal.services.links import external_url
from portal.services.paystack import charges
from portal.timeutil import iso_z

CALLBACK_MESSAGE = "Payment callback received. Verify payment to confirm final status."


@openapi.operation(
    "Start a Paystack checkout for whole liters: send the customer's browser to its authorizationUrl",
    body=schemas.WaterPaystackInitialize,
    responses={
        201: schemas.WaterPaystackStartedAnswer,
        400: openapi.Answer(envelope.Failure, "Invalid email, amount, phone number or currency"),
        502: openapi.Answer(envelope.Failure, "Paystack refused the checkout"),
        503: openapi.Answer(envelope.Failure, "Paystack is unreachable or not set up for this merchant"),
        504: openapi.Answer(envelope.Failure, "Paystack did not answer in time; the payment settles when it reports"),
    },
    auth="api_key",
)
@bp.post("/payments/paystack/initialize")
@require_key
def paystack_initialize():
    form = envelope.parse_body(schemas.WaterPaystackInitialize)
    sale = priced(form.amount)
    try:
        started = water.start_checkout(
            g.merchant,
            email=form.email,
            amount=sale.amount,
            liters=sale.liters,
            phone=form.phoneNumber,
            metadata=form.metadata,
            callback_url=external_url("water.paystack_callback"),
        )
    except charges.TestModeRefused as exc:
        return envelope.fail(400, str(exc), "INVALID_AMOUNT")
    except errors.PaymentError as exc:
        status, code, message = envelope.payment_refused(exc)
        return envelope.fail(status, message, code)
    payment = started.payment
    data = {
        "transactionReference": payment.reference,
        "authorizationUrl": started.authorization_url,
        "accessCode": started.access_code,
        "status": payment.status,
        "expiresAt": iso_z(water.expires_at(payment)),
        "amount": sale.amount,
        "liters": sale.liters,
    }
    return envelope.ok(
        data, "Payment checkout initialized successfully. Redirect customer to authorizationUrl.", status=201
    )


@openapi.operation(
    "Ask Paystack about a water Paystack payment now (verify) and update it by the answer",
    path=WaterReferencePath,
    responses={
        200: schemas.WaterTransactionAnswer,
        400: openapi.Answer(envelope.Failure, "An M-Pesa payment: ask GET /api/payments/mpesa/query/{reference}"),
        404: openapi.Answer(envelope.Failure, "Transaction not found"),
        502: openapi.Answer(envelope.Failure, "Paystack refused the verify"),
        503: openapi.Answer(envelope.Failure, "Paystack is unreachable or not set up for this merchant"),
    },
    auth="api_key",
)
@bp.get("/payments/paystack/verify/<reference>")
@require_key
def paystack_verify(reference: str):
    payment = _payment(reference)
    if payment is None:
        return _not_found()
    if not water.is_paystack(payment):
        # The caller's own payment, on the other rail: saying "not found" would be false, and a
        # kiosk told so might start the customer paying again.
        query = url_for("water.mpesa_query", reference=payment.reference)
        return envelope.fail(
            400, f"{payment.reference} is an M-Pesa payment: ask GET {query}", "NOT_A_PAYSTACK_PAYMENT"
        )
    if payment.status in charges.VERIFIABLE:
        try:
            charges.verify_now(payment)
        except (errors.NotConfigured, PaystackError, PaystackUnavailable) as exc:
            return envelope.provider_failure(exc, "verify")
    return envelope.ok(water.serialise(payment, payment.status), "Payment verified successfully")


@openapi.operation(
    "Where the customer's browser lands after the checkout: names the payment to verify (moves no money)",
    query=schemas.WaterPaystackCallbackQuery,
    responses={
        200: schemas.WaterPaystackCallbackAnswer,
        400: openapi.Answer(envelope.Failure, "No reference, or not a transaction reference"),
        404: openapi.Answer(envelope.Failure, "Transaction not found"),
    },
    auth=openapi.PUBLIC,
    description="Paystack's checkout sends the browser here with ?trxref=&reference=. Visiting it proves "
    "nothing: an open payment is verified with Paystack in the background, and the caller is told where to "
    "verify it.",
)
@bp.get("/payments/paystack/callback")
def paystack_callback():
    query = envelope.validate(schemas.WaterPaystackCallbackQuery, request.args.to_dict())
    payment = water.paystack_payment(query.reference)
    if payment is None:
        return _not_found()
    if payment.status == PaymentStatus.PROCESSING:
        charges.verify_later(payment.id)
        db.session.commit()  # the job is enqueued on commit
    data = {"reference": payment.reference, "verifyUrl": url_for("water.paystack_verify", reference=payment.reference)}
    return envelope.ok(data, CALLBACK_MESSAGE)
