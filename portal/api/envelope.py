"""The `{"success": ...}` envelope the gateway, water and bookings documents share.

Success: `{"success": true, "message"?, "data"?}`. Failure: `{"success": false, "message",
"error"}`, where `error` is a code in capitals (the documents' `ERROR_CODE`), plus `errors`
naming every bad field of a request that failed validation. Requests are parsed here too,
so every dialect that speaks this envelope refuses hostile input the same way.
"""

from typing import Any, Literal, TypeVar

from flask import jsonify, request
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from portal.api.parsing import BodyError, echo, parse_json_object

M = TypeVar("M", bound=BaseModel)

# The error code for an HTTP status nobody named more precisely (routing, size, limits, crashes).
CODES = {
    400: "BAD_REQUEST",
    401: "UNAUTHORIZED",
    403: "FORBIDDEN",
    404: "NOT_FOUND",
    405: "METHOD_NOT_ALLOWED",
    409: "CONFLICT",
    413: "PAYLOAD_TOO_LARGE",
    415: "UNSUPPORTED_MEDIA_TYPE",
    422: "UNPROCESSABLE",
    429: "RATE_LIMITED",
    500: "INTERNAL_ERROR",
    502: "PROVIDER_ERROR",
    503: "SERVICE_UNAVAILABLE",
    504: "PROVIDER_TIMEOUT",
}


class Answer(BaseModel):
    """An answer's model (the OpenAPI document): every field it may carry, nothing else."""

    model_config = ConfigDict(extra="forbid")


class FieldProblem(Answer):
    field: str = Field(description="The bad field's name (dotted when nested), or an empty string for the body")
    message: str
    value: Any = Field(None, description="The value sent, echoed back (cut to 500 characters)")


class Failure(Answer):
    """`{"success": false, "message", "error"}`, with `errors` when the request failed validation."""

    success: Literal[False]
    message: str
    error: str = Field(pattern=r"^[A-Z][A-Z0-9_]*$", description="A code in capitals", examples=["VALIDATION_ERROR"])
    errors: list[FieldProblem] | None = None


class Success(Answer):
    success: Literal[True]
    message: str | None = None


def ok(data: Any = None, message: str | None = None, status: int = 200, **extra):
    body: dict = {"success": True}
    if message is not None:
        body["message"] = message
    if data is not None:
        body["data"] = data
    body.update(extra)
    return jsonify(body), status


def fail(status: int, message: str, code: str | None = None, **extra):
    body = {"success": False, "message": message, "error": code or CODES.get(status, f"HTTP_{status}")}
    body.update(extra)
    response = jsonify(body)
    response.status_code = status
    return response


def render_error(status: int, message: str, details=None):
    """The renderer of every routing, size and server error under the prefixes that use this envelope."""
    if status == 429:
        return fail(429, "Too many requests, please try again later.")
    return fail(status, details or message)


class Invalid(Exception):
    """A request that failed validation: `errors` names each bad field."""

    def __init__(self, errors: list[dict], message: str = "Validation failed"):
        super().__init__(message)
        self.errors, self.message = errors, message

    def response(self):
        return fail(400, self.message, "VALIDATION_ERROR", errors=self.errors)

    def first_problem_response(self):
        """The same answer with the first problem as its message (the water and bookings documents
        name what is wrong: "Invalid amount or out of range")."""
        return fail(400, self.errors[0]["message"], "VALIDATION_ERROR", errors=self.errors)


def field(name: str, message: str, value: Any = None) -> dict:
    return {"field": name, "message": message, "value": echo(value)}


def parse_body(model: type[M]) -> M:
    """The JSON body validated by `model`, or Invalid naming every bad field."""
    if not request.is_json:
        raise Invalid([field("", "Request body must be JSON (Content-Type: application/json)")])
    try:
        raw = parse_json_object(request.get_data(cache=False))
    except BodyError as exc:
        raise Invalid([field(exc.field, exc.message, exc.value)]) from None
    return validate(model, raw)


def validate(model: type[M], raw: dict) -> M:
    try:
        return model.model_validate(raw)
    except ValidationError as exc:
        raise Invalid(_field_errors(exc, raw)) from None


def _field_errors(exc: ValidationError, raw: dict) -> list[dict]:
    errors = []
    for err in exc.errors():
        name = ".".join(str(part) for part in err["loc"]) if err["loc"] else ""
        ctx_error = (err.get("ctx") or {}).get("error")
        message = str(ctx_error) if ctx_error else err["msg"]
        if err["type"] == "missing":
            message = f"{name} is required"
        top = err["loc"][0] if err["loc"] else None
        errors.append(field(name, message, raw.get(top) if isinstance(top, str) else None))
    return errors


def provider_failure(exc: Exception, what: str = "request"):
    """The answer when a provider could not be asked (`what`: "request", "query", "verify"): not
    set up for the merchant (NotConfigured), a refusal (DarajaError, PaystackError) or unreachable
    (DarajaUnavailable, PaystackUnavailable)."""
    from portal.providers.daraja import DarajaError
    from portal.providers.paystack import PaystackError
    from portal.services import errors

    if isinstance(exc, errors.NotConfigured):
        return fail(503, str(exc), "NOT_CONFIGURED")
    if isinstance(exc, DarajaError):
        status = 503 if exc.retryable else 502
        return fail(status, f"M-Pesa refused the {what}: {exc.error_code}: {exc.error_message}")
    if isinstance(exc, PaystackError):
        return fail(503 if exc.retryable else 502, f"Paystack refused the {what}: {exc.message}")
    who = "Paystack" if exc.__class__.__module__.endswith("paystack") else "M-Pesa"
    return fail(503, f"{who} is unavailable, please try again shortly: {exc}")


def payment_refused(exc) -> tuple[int, str, str]:
    """(status, code, message) for a services.errors.PaymentError, in this envelope's words."""
    from portal.services import errors

    if isinstance(exc, errors.SubscriberBusy):
        return (
            409,
            "DUPLICATE_TRANSACTION",
            ("This customer already has a payment prompt open. Wait for it to finish (about a minute) and try again."),
        )
    if isinstance(exc, errors.NotConfigured):
        return 503, "NOT_CONFIGURED", str(exc)
    who = exc.provider
    if isinstance(exc, errors.ProviderRejected):
        return 502, "PROVIDER_REJECTED", f"{who} rejected the request: {exc.code}: {exc}"
    if isinstance(exc, errors.OutcomeUnknown):
        return (
            504,
            "OUTCOME_UNKNOWN",
            (
                f"{who} did not answer in time; payment {exc.payment.reference} settles when {who} reports it. "
                "Do not retry with a new request."
            ),
        )
    return 503, "PROVIDER_UNAVAILABLE", f"{who} is unavailable, please try again shortly: {exc}"
