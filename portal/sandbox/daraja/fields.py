"""Daraja's field rules, shared by the simulated APIs: each refusal is Daraja's
`400.002.02 Bad Request - Invalid <Field>`. Hostile values (wrong types, control characters,
lone surrogates, non-finite numbers) are refused like any other bad value."""

import math
import re

from portal.sandbox.daraja.errors import invalid

MSISDN = re.compile(r"254[0-9]{9}")
SHORTCODE = re.compile(r"[0-9]{5,7}")
URL = re.compile(r"https?://[\x21-\x7e]+")  # printable ASCII, no spaces (Daraja refuses a stray space)
MAX_AMOUNT = 250_000  # per transaction, KES (reference §9.5)


def whole_amount(body: dict, field: str = "Amount", low: int = 1, high: int = MAX_AMOUNT) -> int:
    """A whole number of shillings in [low, high], sent as a number or a numeric string."""
    value = body.get(field)
    if isinstance(value, bool):
        raise invalid(field)
    try:
        number = float(value)
    except (TypeError, ValueError, OverflowError):
        raise invalid(field) from None
    if not math.isfinite(number) or number != int(number) or not low <= number <= high:
        raise invalid(field)
    return int(number)


def _scalar(body: dict, field: str) -> str:
    value = body.get(field)
    if isinstance(value, bool) or not isinstance(value, str | int):
        return ""
    return str(value)


def shortcode(body: dict, field: str) -> str:
    """5 to 7 digits, as a JSON number or a string."""
    value = _scalar(body, field)
    if not SHORTCODE.fullmatch(value):
        raise invalid(field)
    return value


def msisdn(body: dict, field: str) -> str:
    """254 and nine digits, as a JSON number or a string, no `+`."""
    value = _scalar(body, field)
    if not MSISDN.fullmatch(value):
        raise invalid(field)
    return value


def party(body: dict, field: str) -> str:
    """An organisation's shortcode or a subscriber's MSISDN."""
    value = _scalar(body, field)
    if not (SHORTCODE.fullmatch(value) or MSISDN.fullmatch(value)):
        raise invalid(field)
    return value


def url(body: dict, field: str) -> str:
    value = body.get(field)
    if not isinstance(value, str) or not URL.fullmatch(value) or len(value) > 2048:
        raise invalid(field)
    return value


def text(body: dict, field: str, high: int, low: int = 1, required: bool = True) -> str | None:
    """A printable string of low..high characters; None when absent and not required."""
    value = body.get(field)
    if value is None and not required:
        return None
    if not isinstance(value, str) or not value.isprintable() or not low <= len(value) <= high:
        raise invalid(field)
    return value


def choice(body: dict, field: str, allowed: tuple[str, ...]) -> str:
    value = body.get(field)
    if value not in allowed:  # exact: Daraja's values are case-sensitive
        raise invalid(field)
    return value
