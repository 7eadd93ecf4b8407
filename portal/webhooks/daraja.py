"""Daraja's callbacks: STK results on three documented paths, C2B validation and confirmation;
one inbox for all, each answered in the words its sender or its API expects.
Whatever arrives is stored and acknowledged (a body over MAX_CONTENT_LENGTH is refused with
413 before it is read)."""

import logging

from flask import jsonify, request
from werkzeug.exceptions import RequestEntityTooLarge

from portal.dialects import dialect_of
from portal.extensions import db
from portal.services import inbox
from portal.services.mpesa import c2b
from portal.webhooks import provider_blueprint

bp = provider_blueprint("daraja_webhooks", __name__)
log = logging.getLogger(__name__)


def _receive(kind: str) -> inbox.Verdict | None:
    raw = request.get_data(cache=False)  # 413 here, unread, when the body is too large
    try:
        return inbox.receive(
            "daraja",
            kind,
            raw,
            path=request.path,
            query_string=request.query_string.decode("latin-1"),
            headers=dict(request.headers),
            source_ip=request.remote_addr,
        )
    except RequestEntityTooLarge:
        raise
    except Exception:  # stored already if the database was reachable; Daraja must get its acknowledgement
        log.exception("Daraja %s callback could not be stored or read", kind)
        db.session.rollback()
        return None


@bp.post("/callback")
def checkout_stk():
    verdict = _receive("stk")
    status = verdict.status if verdict is not None else None
    name = dialect_of("checkout").status_name(status) if status else "RECEIVED"
    return jsonify(message="Callback processed successfully", status=name)


@bp.post("/api/mpesa/callback/stk")
def gateway_stk():
    _receive("stk")
    return jsonify(ResultCode=0, ResultDesc="Accepted")


@bp.post("/api/payments/mpesa/callback")
def water_stk():
    _receive("stk")
    return jsonify(success=True, message="Callback processed successfully")


# C2B. The documented paths, and the aliases we register with Daraja: it refuses to register a
# URL containing "mpesa" (services/mpesa/c2b.py).
@bp.post("/api/mpesa/callback/c2b/validation")
@bp.post("/hooks/daraja/c2b/validation", endpoint="c2b_validation_alias")
def c2b_validation():
    verdict = _receive("c2b_validation")
    # Unreadable, or we failed: refuse rather than take money we cannot attribute.
    return jsonify(verdict.reply if verdict is not None and verdict.reply else c2b.reject(c2b.OTHER_ERROR))


@bp.post("/api/mpesa/callback/c2b/confirmation")
@bp.post("/hooks/daraja/c2b/confirmation", endpoint="c2b_confirmation_alias")
def c2b_confirmation():
    _receive("c2b_confirmation")
    return jsonify(ResultCode=0, ResultDesc="Success")


# B2C and Transaction Status results. We hand Daraja the /hooks/daraja/... aliases (see C2B).
@bp.post("/api/mpesa/callback/b2c/result")
@bp.post("/hooks/daraja/b2c/result", endpoint="b2c_result_alias")
def b2c_result():
    _receive("b2c_result")
    return jsonify(ResultCode=0, ResultDesc="Accepted")


@bp.post("/api/mpesa/callback/b2c/timeout")
@bp.post("/hooks/daraja/b2c/timeout", endpoint="b2c_timeout_alias")
def b2c_timeout():
    _receive("b2c_timeout")
    return jsonify(ResultCode=0, ResultDesc="Accepted")


@bp.post("/hooks/daraja/status/result")
def status_result():
    _receive("status_result")
    return jsonify(ResultCode=0, ResultDesc="Accepted")


@bp.post("/hooks/daraja/status/timeout")
def status_timeout():
    _receive("b2c_timeout")  # the same as a payout's timeout: ask again
    return jsonify(ResultCode=0, ResultDesc="Accepted")
