"""The gateway's M-Pesa routes: STK push and its query, C2B registration and simulation, B2C payouts."""

from flask import g

from portal import openapi
from portal.api import envelope, idempotent
from portal.api.gateway import bp, schemas
from portal.api.gateway.transactions import serialise
from portal.models import Payment
from portal.providers.daraja import DarajaError, DarajaUnavailable
from portal.services import errors, mpesa
from portal.services.mpesa import b2c, c2b

API = "gateway"


def _refuse(status: int, title: str, detail: str):
    code = {409: "REQUEST_IN_PROGRESS", 422: "IDEMPOTENCY_KEY_REUSED"}.get(status)
    return envelope.fail(status, detail, code)


def _bad_key(key: str, message: str):
    return envelope.Invalid([envelope.field(idempotent.HEADER, message, key)]).response()


@openapi.operation(
    "Ask a customer to pay by M-Pesa (STK push)",
    body=schemas.StkPush,
    headers=idempotent.IdempotencyHeaders,
    responses={
        200: schemas.Pushed,
        400: envelope.Failure,
        409: openapi.Answer(
            envelope.Failure, "The customer already has a prompt open, or the key's request is running"
        ),
        422: openapi.Answer(envelope.Failure, "The Idempotency-Key was first used with another body"),
        502: openapi.Answer(envelope.Failure, "M-Pesa refused the request"),
        503: openapi.Answer(envelope.Failure, "M-Pesa is unreachable or not set up for this merchant"),
        504: openapi.Answer(envelope.Failure, "M-Pesa did not answer in time: the payment settles when it reports"),
    },
)
@bp.post("/mpesa/stk-push")
def stk_push():
    form = envelope.parse_body(schemas.StkPush)
    return idempotent.answer_once(API, form.model_dump(), lambda key: _push(form, key), _refuse, _bad_key)


def _push(form: schemas.StkPush, key: str | None) -> tuple[dict, int]:
    try:
        payment = mpesa.initiate_stk_push(
            g.merchant,
            phone=form.phoneNumber,
            amount=form.amount * 100,
            account_reference=form.accountReference,
            description=form.transactionDesc,
            api=API,
            idempotency_key=key,
        )
    except errors.PaymentError as exc:
        status, code, message = envelope.payment_refused(exc)
        return {"success": False, "message": message, "error": code}, status
    return {"success": True, "message": payment.customer_message, "data": serialise(payment)}, 200


@openapi.operation(
    "Ask M-Pesa about an STK push now, and update the payment by its answer",
    body=schemas.StkQuery,
    responses={
        200: schemas.Queried,
        400: envelope.Failure,
        404: envelope.Failure,
        502: openapi.Answer(envelope.Failure, "M-Pesa refused the query"),
        503: openapi.Answer(envelope.Failure, "M-Pesa is unreachable or not set up for this merchant"),
    },
)
@bp.post("/mpesa/stk-push/query")
def stk_push_query():
    form = envelope.parse_body(schemas.StkQuery)
    payment = Payment.get_for_merchant(g.merchant.id, checkout_request_id=form.checkoutRequestId, kind="stk_push")
    if payment is None:
        return envelope.fail(404, f"No STK push with CheckoutRequestID {form.checkoutRequestId}", "NOT_FOUND")
    try:
        result, outcome = mpesa.ask_now(payment)
    except (errors.NotConfigured, DarajaError, DarajaUnavailable) as exc:
        return envelope.provider_failure(exc, "query")
    answer = {
        "ResultCode": result.result_code,
        "ResultDesc": result.result_desc or ("The transaction is being processed" if result.pending else None),
        "pending": result.pending,
        "applied": outcome == "applied",
        "transaction": serialise(payment),
    }
    return envelope.ok(answer)


@openapi.operation(
    "Register the merchant's C2B validation and confirmation URLs with M-Pesa",
    body=schemas.C2bRegister,
    responses={
        200: schemas.C2bRegisteredAnswer,
        400: envelope.Failure,
        502: openapi.Answer(envelope.Failure, "M-Pesa refused the request"),
        503: openapi.Answer(envelope.Failure, "M-Pesa is unreachable or not set up for this merchant"),
    },
)
@bp.post("/mpesa/c2b/register")
def c2b_register():
    form = envelope.parse_body(schemas.C2bRegister)
    try:
        registered = c2b.register_urls(g.merchant, form.responseType, form.accounts)
    except (errors.NotConfigured, DarajaError, DarajaUnavailable) as exc:
        return envelope.provider_failure(exc)
    return envelope.ok(registered, "C2B URLs registered")


@openapi.operation(
    "Have a customer pay the merchant's shortcode (sandbox only)",
    body=schemas.C2bSimulate,
    responses={
        200: schemas.C2bSimulatedAnswer,
        400: envelope.Failure,
        403: openapi.Answer(envelope.Failure, "Not on the M-Pesa sandbox"),
        502: openapi.Answer(envelope.Failure, "M-Pesa refused the request"),
        503: openapi.Answer(envelope.Failure, "M-Pesa is unreachable or not set up for this merchant"),
    },
)
@bp.post("/mpesa/c2b/simulate")
def c2b_simulate():
    if not c2b.simulation_allowed():
        return envelope.fail(403, "C2B simulation exists only on the M-Pesa sandbox", "SANDBOX_ONLY")
    form = envelope.parse_body(schemas.C2bSimulate)
    try:
        originator = c2b.simulate(g.merchant, form.msisdn, form.amount, form.billRefNumber)
    except (errors.NotConfigured, DarajaError, DarajaUnavailable) as exc:
        return envelope.provider_failure(exc)
    data = {"originatorConversationId": originator, "msisdn": form.msisdn, "amount": form.amount}
    return envelope.ok(data, "C2B payment simulated: M-Pesa now validates and confirms it")


@openapi.operation(
    "Pay a customer's phone (B2C): queued now, sent to M-Pesa by a job",
    body=schemas.B2c,
    headers=idempotent.IdempotencyHeaders,
    responses={
        202: schemas.PayoutQueued,
        400: envelope.Failure,
        409: openapi.Answer(envelope.Failure, "The key's first request is still running"),
        422: openapi.Answer(envelope.Failure, "The Idempotency-Key was used with another body"),
        503: openapi.Answer(envelope.Failure, "Payouts are not set up for this merchant"),
    },
)
@bp.post("/mpesa/b2c")
def b2c_payout():
    form = envelope.parse_body(schemas.B2c)
    return idempotent.answer_once(API, form.model_dump(), lambda key: _pay_out(form, key), _refuse, _bad_key)


def _pay_out(form: schemas.B2c, key: str | None) -> tuple[dict, int]:
    try:
        payment = b2c.request_payout(
            g.merchant,
            phone=form.phoneNumber,
            amount=form.amount * 100,
            remarks=form.remarks,
            occasion=form.occasion,
            api=API,
            idempotency_key=key,
        )
    except errors.NotConfigured as exc:
        return {"success": False, "message": str(exc), "error": "NOT_CONFIGURED"}, 503
    return {"success": True, "message": "Payout queued: it is sent to M-Pesa now", "data": serialise(payment)}, 202
