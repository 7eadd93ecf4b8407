"""Hostile input made harmless for every JSON dialect: a body parsed as a JSON object (no
NaN/Infinity, no overflowing numbers, no nesting past what Python can follow, UTF-8 only),
text checked for control characters, and values made safe to echo back in an error."""

import json
import math
import re
import unicodedata
from typing import Any

MAX_ECHO = 500  # characters of an offending value echoed back in an error


class BodyError(ValueError):
    """The body cannot be used; `field` names the top-level field at fault ("" for the whole body)."""

    def __init__(self, message: str, field: str = "", value: Any = None):
        super().__init__(message)
        self.message, self.field, self.value = message, field, value


class NonFinite:
    """Stands in for NaN, Infinity or a number too large for a float, until the field is named."""

    def __init__(self, text: str):
        self.text = text


def _float(text: str):
    value = float(text)
    return value if math.isfinite(value) else NonFinite(text)


def parse_json_object(raw: bytes) -> dict:
    """The body as a dict, or BodyError. Numbers are finite floats or ints (within Python's
    digit limit); anything else names the field that held it."""
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        raise BodyError("Request body must be UTF-8 encoded JSON") from None
    try:
        value = json.loads(text, parse_constant=NonFinite, parse_float=_float)
    except RecursionError:
        raise BodyError("Request body is nested too deeply") from None
    except ValueError:  # malformed JSON, or an integer past Python's digit limit
        raise BodyError("Request body must be a JSON object") from None
    if not isinstance(value, dict):
        raise BodyError("Request body must be a JSON object")
    for key, item in value.items():
        bad = _find_non_finite(item)
        if bad is not None:
            raise BodyError(f"{key} must be a finite number", field=key, value=bad.text)
    return value


def _find_non_finite(value) -> NonFinite | None:
    stack = [value]  # iterative: the value may nest as deep as the parser allowed
    while stack:
        item = stack.pop()
        if isinstance(item, NonFinite):
            return item
        if isinstance(item, dict):
            stack.extend(item.values())
        elif isinstance(item, list):
            stack.extend(item)
    return None


_UNSAFE = {"Cc", "Cs"}  # control characters (NUL included) and lone surrogates


def has_unsafe_characters(text: str) -> bool:
    """True if the text holds characters we never store or show: control characters
    (tab and newline included) and lone surrogates."""
    return any(unicodedata.category(ch) in _UNSAFE for ch in text)


DIGITS = re.compile(r"[0-9]{1,12}")  # ASCII digits only: "²".isdigit() is True, int("²") fails


def whole_number(raw: str) -> int | None:
    """The value of a query parameter of plain ASCII digits, else None."""
    return int(raw) if DIGITS.fullmatch(raw) else None


def echo(value: Any) -> Any:
    """A value as it may appear in an error answer: valid JSON, bounded in size."""
    if value is None or isinstance(value, (bool, int)):
        return value if not isinstance(value, int) or abs(value) < 10**50 else str(value)[:MAX_ECHO]
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, str):
        return value[:MAX_ECHO]
    try:
        text = json.dumps(value, allow_nan=False)
    except (ValueError, TypeError, RecursionError):
        return None
    return value if len(text) <= MAX_ECHO else text[:MAX_ECHO]
