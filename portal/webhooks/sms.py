"""Africa's Talking's delivery reports: stored raw in the inbox, then read (services/sms_reports.py);
always answered 200 with an empty body (a body over MAX_CONTENT_LENGTH is refused with 413 unread)."""

from flask import Response
from pydantic import BaseModel, Field

from portal import openapi
from portal.webhooks import provider_blueprint, receive

bp = provider_blueprint("sms_webhooks", __name__)
openapi.section(
    bp,
    "provider callbacks",
    "Where Africa's Talking posts delivery reports: any bytes are stored first, then read, and always answered",
    responses={413: openapi.Answer(None, "The body is over the size limit (refused unread)")},
)


class AtDeliveryReport(BaseModel):
    """AT's delivery report, form-encoded (JSON is read too)."""

    id: str = Field(description="The messageId of the send's answer")
    status: str = Field(description="Sent, Submitted, Buffered; final: Success, Rejected, Failed")
    phoneNumber: str | None = None
    networkCode: str | None = Field(None, description="The telco (99999 in AT's sandbox)")
    failureReason: str | None = Field(None, description="For Rejected and Failed, when the telco says")
    retryCount: str | None = None


class DeliveryReportQuery(BaseModel):
    """The URL we give AT names the account it is set in and carries a token."""

    ref: str | None = Field(None, description="The account: M<merchant id>, or AT for the platform's own")
    token: str | None = Field(None, description="Proves the report came through the URL we handed out")


@openapi.operation(
    "Africa's Talking's delivery report of an SMS",
    body=openapi.Raw(AtDeliveryReport, content_types=(openapi.FORM, "application/json")),
    query=DeliveryReportQuery,
    responses={200: openapi.Answer(None, "Received (an empty body)", "text/plain")},
)
@bp.post("/api/sms/delivery-reports")
def delivery_reports():
    receive("africastalking", "delivery_report")
    return Response(b"", 200, content_type="text/plain")
