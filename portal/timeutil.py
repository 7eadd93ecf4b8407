"""Time helpers: the database stores naive UTC; APIs print ISO 8601 with milliseconds and Z."""

from datetime import UTC, date, datetime, timedelta, timezone

EAT = timezone(timedelta(hours=3))  # Daraja's timestamps are East Africa Time


def utcnow() -> datetime:
    return datetime.now(UTC).replace(tzinfo=None)


def iso_z(value: datetime | None) -> str | None:
    if value is None:
        return None
    return value.strftime("%Y-%m-%dT%H:%M:%S.") + f"{value.microsecond // 1000:03d}Z"


def daraja_timestamp(now: datetime | None = None) -> str:
    return (now or datetime.now(UTC)).astimezone(EAT).strftime("%Y%m%d%H%M%S")


def as_nairobi(naive_utc: datetime) -> datetime:
    """A naive-UTC database time as an aware Nairobi time."""
    return naive_utc.replace(tzinfo=UTC).astimezone(EAT)


def nairobi_today(now: datetime | None = None) -> date:
    return (now or datetime.now(UTC)).astimezone(EAT).date()


def nairobi_midnight_utc(day: date) -> datetime:
    """The naive-UTC instant at which `day` begins in Nairobi."""
    return datetime(day.year, day.month, day.day, tzinfo=EAT).astimezone(UTC).replace(tzinfo=None)


def nairobi(value: datetime | None, fmt: str = "%d %b %H:%M:%S") -> str:
    """A naive-UTC database time shown as Nairobi wall-clock time (the portal's clock)."""
    return "" if value is None else as_nairobi(value).strftime(fmt)


def epoch_ms(value: datetime | None) -> int | None:
    """A naive-UTC database time as milliseconds since the epoch (JavaScript's Date.now())."""
    if value is None:
        return None
    return int(value.replace(tzinfo=UTC).timestamp() * 1000)
