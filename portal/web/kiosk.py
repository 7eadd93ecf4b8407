"""The kiosk (web layer): the full-screen page of one water station, `/kiosk/<code>`. The page is
a static shell, a reference client of the water API: static/kiosk.js pairs it once with the
station's key (kept in the browser), then speaks only the documented routes with that key.

No login and no lookup: station codes are unique per merchant, not globally, so the code in the
address finds nothing here; the key decides the merchant, and the API refuses a key of another
station than the address names."""

from flask import Blueprint, abort, current_app, redirect, render_template, url_for

from portal.services import stations

bp = Blueprint("kiosk", __name__)
REFERENCE = "WS-REFERENCE"  # stands for a payment's reference in the URLs the page fills in itself


@bp.get("/kiosk/<station>")
def kiosk(station: str):
    try:
        code = stations.clean_code(station)
    except stations.StationInputError:
        abort(404)
    if code != station:  # kiosk/station001: one address per station, so one remembered key
        return redirect(url_for("kiosk.kiosk", station=code), 308)
    config = current_app.config
    urls = {
        "whoami": url_for("water.station_whoami"),
        "preview": url_for("water.preview"),
        "initiate": url_for("water.mpesa_initiate"),
        "status": url_for("water.payment_status", reference=REFERENCE),
        "verify": url_for("water.station_verify"),
        "complete": url_for("water.station_complete"),
    }
    return render_template(
        "kiosk/kiosk.html",
        station=code,
        urls=urls,
        placeholder=REFERENCE,
        flow=config["KIOSK_FLOW_LITERS_PER_SECOND"],
        idle_return=config["KIOSK_IDLE_RETURN_SECONDS"],
        abandon=config["KIOSK_ABANDON_SECONDS"],
        code_minutes=config["OTP_EXPIRY_MINUTES"],  # how long the code screen waits for a paid customer
    )
