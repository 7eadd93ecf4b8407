"""Settings: the merchant's provider credentials (encrypted, never shown back in full)."""
from flask import Blueprint, render_template
from flask_login import login_required

bp = Blueprint("settings", __name__)


@bp.get("/settings")
@login_required
def index():
    return render_template("settings/index.html")
