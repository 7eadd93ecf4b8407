"""The ledger: list, one payment, request a payment."""
from flask import Blueprint, render_template
from flask_login import login_required

bp = Blueprint("payments", __name__)


@bp.get("/payments")
@login_required
def index():
    return render_template("payments/list.html")


@bp.get("/payments/new")
@login_required
def new():
    return render_template("payments/list.html")


@bp.get("/payments/<int:payment_id>")
@login_required
def detail(payment_id: int):
    return render_template("payments/list.html")
