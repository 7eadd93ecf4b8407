"""Daraja STK callbacks. Three documented paths, one handler; each answers in its API's words.
Never a 500: whatever arrives is stored and acknowledged."""
import logging

from flask import Blueprint, jsonify, request

from portal.api.checkout import STATUS_NAMES
from portal.extensions import db
from portal.services.callbacks import receive_stk_callback

bp = Blueprint("daraja_webhooks", __name__)
log = logging.getLogger(__name__)


def _receive():
    try:
        return receive_stk_callback(request.get_data(cache=False), path=request.path,
                                    query_string=request.query_string.decode("latin-1"),
                                    headers=dict(request.headers), source_ip=request.remote_addr)
    except Exception:  # stored raw already if the database was reachable; Daraja must get its 200
        log.exception("STK callback could not be processed")
        db.session.rollback()
        return None


@bp.post("/callback")
def checkout_stk():
    received = _receive()
    payment = received.payment if received else None
    status = STATUS_NAMES[payment.status] if payment is not None else "RECEIVED"
    return jsonify(message="Callback processed successfully", status=status)


@bp.post("/api/mpesa/callback/stk")
def gateway_stk():
    _receive()
    return jsonify(ResultCode=0, ResultDesc="Accepted")


@bp.post("/api/payments/mpesa/callback")
def water_stk():
    _receive()
    return jsonify(success=True, message="Callback processed successfully")
