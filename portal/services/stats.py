"""Dashboard figures for one merchant: volume, count and success rate for today and this
week (Nairobi time), and completed volume per day for the last 14 days. A push M-Pesa refused
never reached the customer, so it is counted apart and left out of the success rate."""

from dataclasses import dataclass
from datetime import date, timedelta

from sqlalchemy import case, func, literal_column

from portal.extensions import db
from portal.models import Payment, PaymentStatus
from portal.timeutil import nairobi_midnight_utc, nairobi_today

S = PaymentStatus
SETTLED = (S.COMPLETED, S.FAILED, S.CANCELLED, S.TIMEOUT)


@dataclass
class Period:
    label: str
    count: int
    completed: int
    settled: int  # reached an outcome, refused pushes included
    volume: int  # minor units, completed payments only
    refused: int = 0  # never reached the customer (Payment.refused)

    @property
    def success_rate(self) -> float | None:
        """Completed out of those the customer answered or M-Pesa settled; refused pushes are
        in neither count. None before any outcome."""
        asked = self.settled - self.refused
        return self.completed / asked if asked else None


@dataclass
class Day:
    day: date
    volume: int
    count: int


def period(merchant_id: int, label: str, since: date) -> Period:
    completed = Payment.status == S.COMPLETED
    row = (
        db.session.query(
            func.count(Payment.id),
            func.coalesce(func.sum(case((completed, 1), else_=0)), 0),
            func.coalesce(func.sum(case((Payment.status.in_(SETTLED), 1), else_=0)), 0),
            func.coalesce(func.sum(case((completed, Payment.amount), else_=0)), 0),
            func.coalesce(func.sum(case((Payment.refused, 1), else_=0)), 0),
        )
        .filter(Payment.merchant_id == merchant_id, Payment.created_at >= nairobi_midnight_utc(since))
        .one()
    )
    return Period(label, *(int(v) for v in row))


def _nairobi_day(column):
    """The Nairobi calendar date of a naive-UTC column, in the database's own dialect."""
    if db.engine.dialect.name == "sqlite":
        return func.date(column, "+3 hours")
    return func.date(column + literal_column("interval '3 hours'"))


def daily(merchant_id: int, days: int = 14, today: date | None = None) -> list[Day]:
    today = today or nairobi_today()
    first = today - timedelta(days=days - 1)
    day = _nairobi_day(Payment.created_at).label("day")
    rows = (
        db.session.query(
            day,
            func.coalesce(func.sum(case((Payment.status == S.COMPLETED, Payment.amount), else_=0)), 0),
            func.count(Payment.id),
        )
        .filter(Payment.merchant_id == merchant_id, Payment.created_at >= nairobi_midnight_utc(first))
        .group_by(day)
        .all()
    )
    found = {str(d)[:10]: (int(v), int(c)) for d, v, c in rows}
    series = []
    for i in range(days):
        d = first + timedelta(days=i)
        volume, count = found.get(d.isoformat(), (0, 0))
        series.append(Day(d, volume, count))
    return series


def overview(merchant_id: int) -> dict:
    today = nairobi_today()
    monday = today - timedelta(days=today.weekday())
    return {
        "today": period(merchant_id, "Today", today),
        "week": period(merchant_id, "This week", monday),
        "days": daily(merchant_id, 14, today),
    }
