"""The Paystack simulator's refusals: raised anywhere in it, answered in Paystack's error body
`{"status": false, "message", "meta": {"nextStep"}, "type", "code"}` (older errors carry only
status and message, as Paystack's do)."""

from flask import Response, jsonify

VALIDATION = "validation_error"
ALL_PARAMS = "Provide all required params"


class PaystackRefusal(Exception):
    def __init__(
        self,
        status: int,
        message: str,
        *,
        code: str | None = None,
        kind: str | None = None,
        next_step: str | None = None,
    ):
        super().__init__(message)
        self.status, self.message, self.code, self.kind, self.next_step = status, message, code, kind, next_step

    def body(self) -> dict:
        body: dict = {"status": False, "message": self.message}
        if self.next_step:
            body["meta"] = {"nextStep": self.next_step}
        if self.kind:
            body["type"] = self.kind
        if self.code:
            body["code"] = self.code
        return body

    def response(self) -> Response:
        answer = jsonify(self.body())
        answer.status_code = self.status
        return answer


def invalid_key() -> PaystackRefusal:
    return PaystackRefusal(401, "Invalid key")


def missing(message: str) -> PaystackRefusal:
    return PaystackRefusal(400, message, code="missing_params", kind=VALIDATION, next_step=ALL_PARAMS)


def invalid(message: str, next_step: str | None = None, code: str = "invalid_params") -> PaystackRefusal:
    return PaystackRefusal(400, message, code=code, kind=VALIDATION, next_step=next_step)


def invalid_amount() -> PaystackRefusal:
    return invalid(
        "Invalid Amount Sent",
        "Ensure that you're passing the amount as a positive whole number in the currency's subunit",
        code="invalid_amount",
    )


def duplicate_reference() -> PaystackRefusal:
    return invalid(
        "Duplicate Transaction Reference",
        "Use a new reference for every transaction, or verify the one you have",
        code="duplicate_reference",
    )


def unsupported_currency() -> PaystackRefusal:
    return PaystackRefusal(400, "Currency not supported by merchant")


def invalid_recipient() -> PaystackRefusal:
    return invalid(
        "Recipient specified is invalid",
        "Provide a valid recipient. You can create one with the transfer recipient endpoint",
        code="invalid_transfer_recipient",
    )
