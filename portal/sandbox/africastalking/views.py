"""The AT simulator's HTTP face: POST /version1/messaging as AT answers it (201 with exactly
`application/json`, plain-text 401 and 400), and the kept messages as JSON (for tests and people)."""

import json

from flask import Blueprint, Response, jsonify, request
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from portal import openapi
from portal.extensions import db
from portal.sandbox import faults
from portal.sandbox.africastalking import messaging
from portal.timeutil import iso_z

bp = Blueprint("sandbox_africastalking", __name__, url_prefix="/sandbox/africastalking")
outbox = Blueprint("sandbox_africastalking_outbox", __name__, url_prefix="/sandbox/africastalking/messages")
PLAIN = openapi.Answer(None, content_type="text/plain")
openapi.section(
    bp,
    "sandbox",
    "Provider simulators (sandbox mode only): Africa's Talking's SMS endpoint, its shapes and refusals",
    auth="at_api_key",
    responses={
        400: openapi.Answer(None, "Request is missing required form field '<name>' (plain text)", "text/plain"),
        401: openapi.Answer(None, "The supplied authentication is invalid (plain text)", "text/plain"),
        413: PLAIN,
        500: openapi.Answer(None, "The fault switches (plain text)", "text/plain"),
    },
)
openapi.section(
    outbox,
    "sandbox",
    "Provider simulators (sandbox mode only): the SMS the Africa's Talking simulator kept",
    responses={413: openapi.Answer(None)},
)
UNAUTHORISED = "The supplied authentication is invalid"
SHOWN = 100  # messages listed per number


def render_error(status: int, message: str, details=None) -> Response:
    """AT's transport errors are plain text: the renderer of every error of its API."""
    return Response(message, status, content_type="text/plain")


faults.install_api_faults(bp, render_error)


class AtSendRequest(BaseModel):
    """AT's form fields (reference §10.1); every value is text, as a form's are."""

    model_config = ConfigDict(extra="ignore", populate_by_name=True)
    username: str = Field(min_length=1, description='"sandbox" in the sandbox')
    to: str = Field(min_length=1, description="Comma-separated recipients, international format (+2547...)")
    message: str = Field(min_length=1)
    sender: str | None = Field(None, alias="from", description="Sender ID or short code; default AFRICASTKNG")
    bulkSMSMode: str | None = None
    enqueue: str | None = None


class AtRecipient(BaseModel):
    statusCode: int
    number: str
    status: str
    cost: str
    messageId: str = Field(description='"None" for a refused recipient')


class AtMessageData(BaseModel):
    Message: str
    Recipients: list[AtRecipient]


class AtSendAnswer(BaseModel):
    SMSMessageData: AtMessageData


@openapi.operation(
    "Africa's Talking: send an SMS (201 whatever became of each recipient)",
    body=openapi.Form(AtSendRequest),
    responses={201: AtSendAnswer},
)
@bp.post("/version1/messaging")
def send():
    if not messaging.key_valid(request.headers.get("apiKey")):
        return render_error(401, UNAUTHORISED)
    try:
        form = AtSendRequest.model_validate(request.form.to_dict())
    except ValidationError as exc:
        field = exc.errors()[0]["loc"][0]
        return render_error(400, f"Request is missing required form field '{field}'")
    if not form.to.replace(",", "").strip():
        return render_error(400, "Request is missing required form field 'to'")
    if form.username != messaging.USERNAME:  # the sandbox key with a live username: AT's most reported 401
        return render_error(401, UNAUTHORISED)
    try:
        sent = messaging.send(form.username, form.to, form.message, form.sender)
    except messaging.AccountRejected as exc:
        return _answer({"Message": str(exc), "Recipients": []})
    recipients = [
        {
            "statusCode": row.status_code,
            "number": row.to,
            "status": row.status,
            "cost": row.cost,
            "messageId": row.message_id or "None",
        }
        for row in sent.recipients
    ]
    db.session.commit()  # the kept messages, and the reports' deliveries (sent once committed)
    return _answer({"Message": sent.summary, "Recipients": recipients})


def _answer(data: dict) -> Response:
    # Exactly application/json, no charset: AT's Python SDK hands back a string otherwise.
    return Response(json.dumps({"SMSMessageData": data}), 201, content_type="application/json")


class AtMessagesQuery(BaseModel):
    to: str = Field(min_length=1, max_length=32, description="The number, as +254... or 254...")


class AtKeptMessage(BaseModel):
    model_config = ConfigDict(populate_by_name=True)
    messageId: str = Field(description='"None" for a refused recipient')
    to: str
    sender: str = Field(alias="from")
    message: str
    statusCode: int
    status: str
    cost: str
    deliveryStatus: str | None = Field(description="The delivery report it gets (Success or Failed)")
    createdAt: str


class AtKeptMessages(BaseModel):
    to: str
    messages: list[AtKeptMessage]


class AtOutboxRefused(BaseModel):
    error: str


@openapi.operation(
    "The SMS the simulator kept for a number, newest first",
    query=AtMessagesQuery,
    responses={200: AtKeptMessages, 400: AtOutboxRefused},
)
@outbox.get("")
def messages():
    try:
        asked = AtMessagesQuery.model_validate(request.args.to_dict())
    except ValidationError:
        return jsonify(error="to is required: a phone number as +254... or 254..."), 400
    number = messaging.international(asked.to.strip())
    if number is None:
        return jsonify(error="to must be a phone number as +254... or 254..."), 400
    rows = messaging.kept(number, SHOWN)
    return jsonify(
        to=number,
        messages=[
            {
                "messageId": row.message_id or "None",
                "to": row.to,
                "from": row.sender,
                "message": row.message,
                "statusCode": row.status_code,
                "status": row.status,
                "cost": row.cost,
                "deliveryStatus": row.delivery_status,
                "createdAt": iso_z(row.created_at),
            }
            for row in rows
        ],
    )
