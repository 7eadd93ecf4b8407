"""The virtual phone: a handset page showing STK prompts and an SMS inbox (sandbox only)."""
from flask import Blueprint, render_template

bp = Blueprint("sandbox_phone", __name__, url_prefix="/sandbox/phone")


@bp.get("/<msisdn>")
def phone(msisdn: str):
    return render_template("sandbox/phone.html", msisdn=msisdn)
