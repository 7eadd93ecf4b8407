"""API keys: create (shown once), list, revoke."""
from flask import Blueprint, render_template
from flask_login import login_required

bp = Blueprint("keys", __name__)


@bp.get("/keys")
@login_required
def index():
    return render_template("keys/index.html")
