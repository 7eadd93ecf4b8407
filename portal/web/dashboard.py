"""The dashboard: today's and this week's figures, 14 days of volume, the latest payments;
figures and rows both poll, so they never disagree for long."""

from flask import Blueprint, render_template
from flask_login import current_user, login_required

from portal.services import ledger, stats
from portal.web.formatting import compact_shillings, money

bp = Blueprint("dashboard", __name__)
LATEST = 10
# The chart's SVG user units: room on the left for the value axis, above the bars for their
# values, below them for the day of the month.
CHART_W, CHART_H = 480, 220
LEFT, TOP, BOTTOM = 74, 22, 24
GRIDLINES = 4


def nice_step(top_shillings: int, lines: int = GRIDLINES) -> int:
    """The smallest 1, 2 or 5 × 10ⁿ shillings that covers `top_shillings` in `lines` steps."""
    raw = max(1, -(-top_shillings // lines))
    magnitude = 10 ** (len(str(raw)) - 1)
    return next(m * magnitude for m in (1, 2, 5, 10) if m * magnitude >= raw)


def chart(days: list[stats.Day]) -> dict:
    """Geometry for the server-rendered SVG chart: value axis gridlines with KES labels, and a
    bar per day with its value above it. Amounts stay integers; only pixels are fractional."""
    top_minor = max((d.volume for d in days), default=0)
    step = nice_step(-(-top_minor // 100)) if top_minor else 0
    lines = -(-top_minor // (step * 100)) if step else 0
    scale_minor = max(1, lines * step * 100)
    plot_h = CHART_H - TOP - BOTTOM
    base = CHART_H - BOTTOM
    grid = [
        {
            "y": round(base - plot_h * i * step * 100 / scale_minor, 1),
            "label": "KES " + compact_shillings(i * step * 100),
        }
        for i in range(lines + 1)
    ]
    slot = (CHART_W - LEFT) / len(days)
    bars = []
    for i, d in enumerate(days):
        height = round(plot_h * d.volume / scale_minor, 1)
        x = round(LEFT + i * slot + slot * 0.15, 1)
        payments = f"{d.count} payment{'s' if d.count != 1 else ''}"
        bars.append(
            {
                "x": x,
                "width": round(slot * 0.7, 1),
                "y": round(base - height, 1),
                "height": height,
                "middle": round(x + slot * 0.35, 1),
                "day": d.day.strftime("%d"),
                "value": compact_shillings(d.volume) if d.volume else "",
                "title": f"{d.day:%a %d %b}: {money(d.volume)} completed, from {payments}",
            }
        )
    return {"w": CHART_W, "h": CHART_H, "left": LEFT, "base": base, "grid": grid, "bars": bars}


def figures_context(merchant_id: int) -> dict:
    overview = stats.overview(merchant_id)
    return {"chart": chart(overview["days"]), **overview}


@bp.get("/")
@login_required
def index():
    return render_template(
        "dashboard/index.html",
        latest=ledger.latest(current_user.merchant_id, LATEST),
        **figures_context(current_user.merchant_id),
    )


@bp.get("/dashboard/figures")
@login_required
def figures():
    """Polled by the dashboard: the figures and the chart follow the rows below them."""
    return render_template("dashboard/_figures.html", **figures_context(current_user.merchant_id))


@bp.get("/dashboard/latest")
@login_required
def latest():
    """Polled by the dashboard: new payments appear and open ones settle, without a reload."""
    return render_template("dashboard/_latest.html", latest=ledger.latest(current_user.merchant_id, LATEST))
