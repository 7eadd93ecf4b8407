"""Idempotency-Key for any dialect's money-moving route: the first request with a key runs,
its answer is kept and replayed to repeats (with `Idempotent-Replayed: true`); a repeat
with another body, or one that arrives while the first still runs, is refused in the
dialect's own error format. The rules live in services/idempotency.py."""

from collections.abc import Callable

from flask import Response, g, jsonify, request
from pydantic import BaseModel, Field

from portal.api.parsing import has_unsafe_characters
from portal.services import idempotency

HEADER = "Idempotency-Key"
MISMATCH = "This Idempotency-Key was first used with a different request body"
IN_PROGRESS = "A request with this Idempotency-Key is still being processed"


class IdempotencyHeaders(BaseModel):
    """The header a money-moving route takes (the OpenAPI document's description of it)."""

    key: str | None = Field(
        None,
        alias=HEADER,
        min_length=1,
        max_length=idempotency.MAX_KEY_LENGTH,
        description="Makes retries safe: a repeat with the same body replays the first answer",
    )


def key_problem(key: str) -> str | None:
    if not key.strip() or len(key) > idempotency.MAX_KEY_LENGTH or has_unsafe_characters(key):
        return f"{HEADER} must be 1 to {idempotency.MAX_KEY_LENGTH} characters"
    return None


def answer_once(
    api: str,
    payload,
    produce: Callable[[str | None], tuple[dict, int]],
    refuse: Callable[[int, str, str], Response],
    bad_key: Callable[[str, str], Response],
):
    """`produce(key)` makes the answer (body, status); `refuse(status, title, detail)` and
    `bad_key(key, message)` render refusals in the dialect's format."""
    key = request.headers.get(HEADER)
    record = None
    if key is not None:
        problem = key_problem(key)
        if problem:
            return bad_key(key, problem)
        claim = idempotency.claim(g.merchant.id, api, key, payload)
        if claim.state == "replay":
            response = jsonify(claim.record.response_body)
            response.headers["Idempotent-Replayed"] = "true"
            return response, claim.record.status_code
        if claim.state == "mismatch":
            return refuse(422, "Idempotency-Key reused", MISMATCH)
        if claim.state == "in_progress":
            return refuse(409, "Request in progress", IN_PROGRESS)
        record = claim.record
    try:
        body, status = produce(key)
    except BaseException:
        if record is not None:  # the request died: free its key for the client's retry
            idempotency.release(record)
        raise
    if record is not None:
        idempotency.complete(record, status, body)
    return jsonify(body), status
