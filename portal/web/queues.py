"""The queues page: how busy the job queues are, the merchant's dead letters with their
errors (most recent failure first) and a Retry button on each. A retrying row polls itself
until its job has run; the figures poll while anything is waiting or running."""

import redis
from flask import Blueprint, flash, redirect, render_template, url_for
from flask_login import current_user, login_required
from sqlalchemy.orm import selectinload

from portal.extensions import db
from portal.jobs import TITLES
from portal.models import DeadLetter
from portal.queueing import get_redis, queue_figures
from portal.services import dead_letters
from portal.web.htmx import STOP_POLLING, is_htmx

bp = Blueprint("queues", __name__)
SHOWN = 50  # dead letters on the page, most recent failure first
MAX_ID = 2**31 - 1
CHANGED = "dead-letters-changed"  # the event a retry sends, so the figures refresh at once


def figures_context(merchant_id: int) -> dict:
    try:
        queues = queue_figures(get_redis())
    except redis.RedisError:
        queues = None
    counts = dead_letters.counts(merchant_id)
    busy = any(q["queued"] or q["scheduled"] or q["started"] for q in queues or ())
    return {"queues": queues, "counts": counts, "live": bool(counts["retrying"] or busy)}


def _row(row: DeadLetter, status: int = 200, **context):
    html = render_template("queues/_row.html", d=row, titles=TITLES, **context)
    return html, status, {"Vary": "HX-Request"}


@bp.get("/queues")
@login_required
def index():
    rows = (
        dead_letters.recent_errors_first(current_user.merchant_id)
        .options(selectinload(DeadLetter.payment))
        .limit(SHOWN)
        .all()
    )
    return render_template(
        "queues/index.html", rows=rows, shown=SHOWN, titles=TITLES, **figures_context(current_user.merchant_id)
    )


@bp.get("/queues/figures")
@login_required
def figures():
    context = figures_context(current_user.merchant_id)
    return render_template("queues/_figures.html", **context), (200 if context["live"] else STOP_POLLING)


@bp.get(f"/queues/dead-letters/<int(max={MAX_ID}):dead_letter_id>")
@login_required
def row(dead_letter_id: int):
    """One row, polled while its retry is under way; 286 once it is not."""
    dead_letter = DeadLetter.get_for_merchant_or_404(current_user.merchant_id, dead_letter_id)
    return _row(dead_letter, 200 if dead_letter.is_retrying else STOP_POLLING)


@bp.post(f"/queues/dead-letters/<int(max={MAX_ID}):dead_letter_id>/retry")
@login_required
def retry(dead_letter_id: int):
    dead_letter = DeadLetter.get_for_merchant_or_404(current_user.merchant_id, dead_letter_id)
    try:
        dead_letter = dead_letters.retry(dead_letter)
        notice = "Retry queued."
    except dead_letters.RetryRefused as exc:
        db.session.rollback()
        notice = str(exc)
    if is_htmx():
        html, status, headers = _row(dead_letter, notice=notice)
        return html, status, {**headers, "HX-Trigger": CHANGED}
    flash(notice)
    return redirect(url_for("queues.index"), 303)
