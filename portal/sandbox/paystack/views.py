"""The Paystack simulator's API: Paystack's paths under /sandbox/paystack, its envelopes
(`{"status": true, "message", "data"}`, refusals `{"status": false, "message", ...}`), its Bearer
secret-key check (401 "Invalid key") and its HTTP codes (200 for charges and verifies whatever
became of the payment: the outcome is in `data.status`)."""

from flask import Blueprint, Response, current_app, jsonify, request, url_for
from pydantic import BaseModel

from portal import openapi
from portal.extensions import db
from portal.models import SandboxPaystackRecipient
from portal.sandbox import faults
from portal.sandbox.paystack import (
    charges,
    integrations,
    refunds,
    schemas,
    shapes,
    transactions,
    transfers,
)
from portal.sandbox.paystack.errors import PaystackRefusal
from portal.sandbox.paystack.schemas import (
    BalanceAnswer,
    ChargeAnswer,
    ChargeRequest,
    InitializeAnswer,
    InitializeRequest,
    RecipientAnswer,
    RecipientRequest,
    RefundAnswer,
    RefundRequest,
    Refused,
    TransactionAnswer,
    TransferAnswer,
    TransferRequest,
)

bp = Blueprint("sandbox_paystack", __name__, url_prefix="/sandbox/paystack")
openapi.section(
    bp,
    "sandbox",
    "Provider simulators (sandbox mode only): Paystack's paths, envelopes and refusals (test mode)",
    auth="paystack_secret_key",
    responses={
        400: openapi.Answer(Refused, "Paystack's refusal: the message names what is wrong"),
        401: openapi.Answer(Refused, "Invalid key"),
        413: openapi.Answer(Refused, "The body is over the size limit"),
        500: openapi.Answer(Refused, "The fault switches"),
    },
)
NOT_FOUND = openapi.Answer(Refused, "Not found (see SANDBOX_PAYSTACK_NOT_FOUND_STATUS for verify)")


def render_error(status: int, message: str, details=None) -> Response:
    """Paystack's refusal for any HTTP status: the renderer of every error under /sandbox/paystack."""
    return PaystackRefusal(status, message).response()


@bp.errorhandler(PaystackRefusal)
def _refused(exc: PaystackRefusal):
    return exc.response()


faults.install_api_faults(bp, render_error)


def _integration():
    return integrations.check_bearer(request.headers.get("Authorization"))


def _asked() -> BaseModel:
    """The request's JSON body, validated by the model its operation declares: the document's
    description of a simulator route is, by construction, what the simulator enforces. A body
    over MAX_CONTENT_LENGTH is refused with 413 before it is read."""
    request.get_data()
    return schemas.parse(openapi.operation_of(current_app, request.url_rule).body, request.get_json(silent=True))


def _ok(message: str, data, status: int = 200) -> Response:
    answer = jsonify(status=True, message=message, data=data)
    answer.status_code = status
    return answer


@openapi.operation(
    "Paystack: initialize a transaction (a hosted checkout at the authorization URL)",
    body=InitializeRequest,
    responses={200: InitializeAnswer},
)
@bp.post("/transaction/initialize")
def initialize():
    integration = _integration()
    tx = transactions.initialize(_asked(), integration, request.remote_addr)
    # The checkout is a page of the app at PUBLIC_BASE_URL (as Paystack's is on a host of its own):
    # the simulators' own process (sandbox_wsgi.py) serves no pages.
    url = current_app.config["PUBLIC_BASE_URL"] + url_for("sandbox_paystack_checkout.page", access_code=tx.access_code)
    return _ok(
        "Authorization URL created",
        {"authorization_url": url, "access_code": tx.access_code, "reference": tx.reference},
    )


@openapi.operation(
    "Paystack: verify a transaction (the outcome is data.status)",
    responses={200: TransactionAnswer, 404: NOT_FOUND},
)
@bp.get("/transaction/verify/<reference>")
def verify(reference: str):
    integration = _integration()
    status = current_app.config["SANDBOX_PAYSTACK_NOT_FOUND_STATUS"]
    tx = charges.catch_up(transactions.verify(integration, reference, status))
    return _ok("Verification successful", shapes.transaction(tx))


@openapi.operation(
    "Paystack: charge M-Pesa (mobile_money, provider mpesa): a prompt on the phone, answered pay_offline",
    body=ChargeRequest,
    responses={200: ChargeAnswer},
)
@bp.post("/charge")
def charge():
    integration = _integration()
    return _ok("Charge attempted", charges.charge(_asked(), integration, request.remote_addr))


@openapi.operation("Paystack: check a pending charge", responses={200: ChargeAnswer})
@bp.get("/charge/<reference>")
def check_charge(reference: str):
    integration = _integration()
    tx = transactions.find(integration, reference)
    if tx is None:
        raise PaystackRefusal(400, "Transaction reference is invalid")
    tx = charges.catch_up(tx)
    if tx.status == "pending":
        return _ok("Reference check successful", {"reference": tx.reference, "status": "pending"})
    return _ok("Charge attempted", shapes.transaction(tx))


@openapi.operation(
    "Paystack: create a transfer recipient (an M-Pesa wallet, till or paybill; the same account answers the first)",
    body=RecipientRequest,
    responses={201: RecipientAnswer},
)
@bp.post("/transferrecipient")
def create_recipient():
    integration = _integration()
    row = transfers.create_recipient(_asked(), integration)
    return _ok("Transfer recipient created successfully", shapes.recipient(row), 201)


@openapi.operation(
    "Paystack: initiate a transfer from the balance (queued pending; transfer.* webhooks follow)",
    body=TransferRequest,
    responses={200: TransferAnswer},
)
@bp.post("/transfer")
def initiate_transfer():
    integration = _integration()
    row = transfers.initiate(_asked(), integration)
    recipient = db.session.get(SandboxPaystackRecipient, row.recipient_id)
    return _ok("Transfer has been queued", shapes.transfer_queued(row, recipient))


@openapi.operation(
    "Paystack: verify a transfer by its reference", responses={200: TransferAnswer, 404: openapi.Answer(Refused)}
)
@bp.get("/transfer/verify/<reference>")
def verify_transfer(reference: str):
    row = transfers.find(_integration(), reference)
    return _ok("Transfer retrieved", transfers.shown(row))


@openapi.operation(
    "Paystack: refund a successful transaction, whole or in part",
    body=RefundRequest,
    responses={200: RefundAnswer, 404: openapi.Answer(Refused)},
)
@bp.post("/refund")
def refund():
    integration = _integration()
    row, tx = refunds.refund(_asked(), integration)
    return _ok("Refund has been queued for processing", shapes.refund(row, tx))


@openapi.operation("Paystack: the integration's balance", responses={200: BalanceAnswer})
@bp.get("/balance")
def balance():
    integration = _integration()
    return _ok("Balances retrieved", [{"currency": "KES", "balance": integrations.balance(integration.id)}])
