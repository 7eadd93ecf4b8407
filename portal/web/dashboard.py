"""The dashboard: today's and this week's figures, 14 days of volume, the latest payments live."""
from flask import Blueprint, render_template
from flask_login import current_user, login_required

from portal.services import ledger, stats

bp = Blueprint("dashboard", __name__)
LATEST = 10
CHART_W, CHART_H, CHART_PAD = 560, 160, 24


def chart_bars(days: list[stats.Day]) -> list[dict]:
    """Bar geometry for the server-rendered SVG chart (the tallest day fills the height)."""
    top = max((d.volume for d in days), default=0) or 1
    slot = CHART_W / len(days)
    bars = []
    for i, d in enumerate(days):
        height = round((CHART_H - CHART_PAD) * d.volume / top, 1)
        bars.append({"x": round(i * slot + slot * 0.15, 1), "width": round(slot * 0.7, 1),
                     "y": round(CHART_H - CHART_PAD - height, 1), "height": height,
                     "label": d.day.strftime("%d"), "title": f"{d.day:%a %d %b}: KES {d.volume / 100:,.2f} "
                                                              f"from {d.count} payment{'s' if d.count != 1 else ''}"})
    return bars


@bp.get("/")
@login_required
def index():
    overview = stats.overview(current_user.merchant_id)
    return render_template("dashboard/index.html", latest=ledger.latest(current_user.merchant_id, LATEST),
                           bars=chart_bars(overview["days"]),
                           chart={"w": CHART_W, "h": CHART_H, "pad": CHART_PAD}, **overview)


@bp.get("/dashboard/latest")
@login_required
def latest():
    """Polled by the dashboard: new payments appear and open ones settle, without a reload."""
    return render_template("dashboard/_latest.html", latest=ledger.latest(current_user.merchant_id, LATEST))
