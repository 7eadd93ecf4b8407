"""Sign-in and sign-out (flask-login, CSRF-protected form, throttled)."""

import re
from urllib.parse import urlsplit

from flask import Blueprint, current_app, flash, redirect, render_template, request, url_for
from flask_login import current_user, login_required, login_user, logout_user
from flask_wtf import FlaskForm
from flask_wtf.csrf import CSRFError
from wtforms import EmailField, PasswordField
from wtforms.validators import DataRequired, Email, Length

from portal.extensions import db, limiter, login_manager
from portal.models import User
from portal.web.htmx import hx_redirect, is_htmx

bp = Blueprint("auth", __name__)
login_manager.login_view = "auth.login"
login_manager.login_message = "Please sign in to continue."


@login_manager.user_loader
def load_user(session_id: str):
    """The session holds "<user id>:<session version>"; a version from before the last sign-out is refused."""
    match = re.fullmatch(r"([0-9]{1,18}):([0-9]{1,9})", str(session_id))
    if match is None:  # a cookie from before session versions, or one somebody wrote by hand
        return None
    user = db.session.get(User, int(match[1]))
    return user if user is not None and user.session_version == int(match[2]) else None


@login_manager.unauthorized_handler
def unauthorized():
    target = url_for("auth.login", next=request.full_path.rstrip("?") if request.method == "GET" else None)
    if is_htmx():  # an expired session must not paint the login page into a fragment
        response = hx_redirect(target)
        response.status_code = 401
        return response
    return redirect(target)


class LoginForm(FlaskForm):
    email = EmailField("Email", validators=[DataRequired(), Email(), Length(max=254)])
    password = PasswordField("Password", validators=[DataRequired(), Length(max=200)])


def safe_next(target: str | None) -> str | None:
    """Only our own paths: no scheme, no host, no protocol-relative or backslash tricks."""
    if not target or not target.startswith("/") or target.startswith("//") or "\\" in target:
        return None
    parts = urlsplit(target)
    return target if not parts.scheme and not parts.netloc else None


@bp.route("/login", methods=["GET", "POST"])
@limiter.limit(lambda: current_app.config["LOGIN_RATE_LIMIT"], methods=["POST"])
def login():
    if current_user.is_authenticated:
        return redirect(url_for("dashboard.index"))
    form = LoginForm()
    if form.validate_on_submit():
        user = User.query.filter_by(email=form.email.data.strip().lower()).first()
        if user is not None and user.check_password(form.password.data):
            login_user(user)
            return redirect(safe_next(request.args.get("next")) or url_for("dashboard.index"))
        form.password.errors.append("Wrong email or password.")
    status = 422 if request.method == "POST" else 200
    return render_template("auth/login.html", form=form), status


@bp.errorhandler(429)
def too_many_attempts(_exc):
    form = LoginForm()
    form.password.errors = ["Too many sign-in attempts from here. Wait a minute, then try again."]
    return render_template("auth/login.html", form=form), 429


@bp.app_errorhandler(CSRFError)
def csrf_failed(_exc):
    """A stale or missing CSRF token: nothing changes; say so in words and offer the page again.
    Never a page painted into an htmx fragment: htmx is told where to go instead."""
    if request.endpoint == "auth.login":
        form = LoginForm(formdata=None)
        form.csrf_token.errors = ["missing"]
        return render_template("auth/login.html", form=form), 400
    flash("That form had expired, so nothing was changed. Please try again.")
    back = safe_next(urlsplit(request.referrer or "").path)
    if request.blueprint == "sandbox_phone":  # the customer's phone has no login: back to it
        back = url_for("sandbox_phone.phone", msisdn=request.view_args["msisdn"])
    elif request.blueprint == "sandbox_paystack_checkout":  # nor has a customer at Paystack's checkout
        back = url_for("sandbox_paystack_checkout.page", access_code=request.view_args["access_code"])
    elif not current_user.is_authenticated:  # the session expired, and its CSRF secret with it
        return unauthorized()
    back = back or url_for("dashboard.index")
    if is_htmx():
        response = hx_redirect(back)
        response.status_code = 400
        return response
    return redirect(back), 303


@bp.post("/logout")
@login_required
def logout():
    current_user.end_sessions()  # a copy of this session's cookie must not outlive the sign-out
    db.session.commit()
    logout_user()
    flash("You are signed out.")
    return redirect(url_for("auth.login"))
