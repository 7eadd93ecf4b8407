"""The Daraja simulator's refusals: raised anywhere in it, answered in Daraja's error envelope."""

import secrets


class SimError(Exception):
    """Answered as Daraja's error envelope (requestId, errorCode, errorMessage)."""

    def __init__(self, status: int, code: str, message: str, request_id: str | None = None):
        super().__init__(message)
        self.status, self.code, self.message = status, code, message
        self.request_id = request_id or request_id_like_daraja()


def invalid(field: str) -> SimError:
    return SimError(400, "400.002.02", f"Bad Request - Invalid {field}")


def request_id_like_daraja() -> str:
    h = secrets.token_hex
    return f"{h(2)}-{h(2)}-{h(2)}-{h(6)}{1000 + secrets.randbelow(9_999_000)}"
