"""The dashboard: the merchant's latest payments (the full portal grows from here)."""
from flask import Blueprint, render_template
from flask_login import current_user, login_required

from portal.models import Payment

bp = Blueprint("dashboard", __name__)
LATEST = 50


@bp.get("/")
@login_required
def index():
    payments = (Payment.for_merchant(current_user.merchant_id)
                .order_by(Payment.created_at.desc(), Payment.id.desc()).limit(LATEST).all())
    return render_template("dashboard/index.html", payments=payments)
