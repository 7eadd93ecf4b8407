"""Portal views for API keys: create one (its secret shown once), list them, revoke one.
Every query goes through the current merchant; another merchant's key id is a 404."""

from flask import Blueprint, flash, redirect, render_template, url_for
from flask_login import current_user, login_required
from flask_wtf import FlaskForm
from wtforms import StringField
from wtforms.validators import DataRequired, Length

from portal.extensions import db
from portal.models import ApiKey
from portal.timeutil import utcnow
from portal.web.forms import strip
from portal.web.htmx import is_htmx

bp = Blueprint("keys", __name__)


class KeyForm(FlaskForm):
    name = StringField(
        "Key name",
        filters=[strip],
        validators=[
            DataRequired(message="Give the key a name, for example “Online shop” or “Till 2”."),
            Length(max=80, message="Keep the name to 80 characters or fewer."),
        ],
    )


def merchant_keys() -> list[ApiKey]:
    return ApiKey.for_merchant(current_user.merchant_id).order_by(ApiKey.created_at.desc(), ApiKey.id.desc()).all()


def _answer(context: dict, status: int, *, oob_list: bool = False, headers: dict | None = None):
    """htmx gets the form partial it swaps (plus the list out of band when it changed);
    a plain request gets the whole page."""
    if is_htmx():
        body = render_template("keys/_form.html", **context)
        if oob_list:
            body += render_template("keys/_list.html", oob=True, **context)
    else:
        body = render_template("keys/index.html", **context)
    return body, status, {"Vary": "HX-Request", **(headers or {})}


@bp.get("/keys")
@login_required
def index():
    return render_template("keys/index.html", form=KeyForm(), keys=merchant_keys())


@bp.post("/keys")
@login_required
def create():
    form = KeyForm()
    if not form.validate_on_submit():
        return _answer({"form": form, "keys": merchant_keys()}, 422)
    _, plaintext = ApiKey.issue(current_user.merchant, form.name.data)
    db.session.commit()
    # No redirect: the plaintext exists only in this answer, so a plain POST renders the page itself.
    context = {"form": KeyForm(formdata=None), "keys": merchant_keys(), "new_key": plaintext}
    return _answer(context, 201, oob_list=True, headers={"Cache-Control": "no-store"})


@bp.post("/keys/<int:key_id>/revoke")
@login_required
def revoke(key_id: int):
    key = ApiKey.get_for_merchant_or_404(current_user.merchant_id, key_id)
    if key.revoked_at is None:  # revoking twice keeps the first date
        key.revoked_at = utcnow()
        db.session.commit()
    message = f"Key “{key.name}” revoked. Requests using it are now refused."
    if is_htmx():
        return render_template("keys/_list.html", keys=merchant_keys(), message=message), 200, {"Vary": "HX-Request"}
    flash(message)
    return redirect(url_for("keys.index"), 303)
