"""The gateway's M-Pesa routes: STK push and its query (C2B and B2C join them)."""

from flask import g

from portal import openapi
from portal.api import envelope, idempotent
from portal.api.gateway import bp, schemas
from portal.api.gateway.transactions import serialise
from portal.models import Payment
from portal.providers.daraja import DarajaError, DarajaUnavailable
from portal.services import errors, mpesa

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
    except errors.NotConfigured as exc:
        return envelope.fail(503, str(exc), "NOT_CONFIGURED")
    except DarajaError as exc:
        status = 503 if exc.retryable else 502
        return envelope.fail(status, f"M-Pesa refused the query: {exc.error_code}: {exc.error_message}")
    except DarajaUnavailable as exc:
        return envelope.fail(503, f"M-Pesa is unavailable, please try again shortly: {exc}")
    answer = {
        "ResultCode": result.result_code,
        "ResultDesc": result.result_desc or ("The transaction is being processed" if result.pending else None),
        "pending": result.pending,
        "applied": outcome == "applied",
        "transaction": serialise(payment),
    }
    return envelope.ok(answer)
