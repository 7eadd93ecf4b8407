"""Field rules every JSON dialect shares: whole-shilling amounts, Safaricom phones, the texts
M-Pesa shows the customer. Each raises ValueError with a sentence for the person who sent
the request; the Annotated types carry the rule and its JSON schema together, so the OpenAPI
document says what the validator does."""

import math
import re
from decimal import Decimal
from functools import partial
from typing import Annotated, Any

from pydantic import BeforeValidator, WithJsonSchema

from portal.api.parsing import has_unsafe_characters, whole_number
from portal.services.phones import SAFARICOM, InvalidPhone, normalise_safaricom

REFERENCE = re.compile(r"[A-Za-z0-9][A-Za-z0-9 _.\-]{0,11}")


def whole_amount(value: Any) -> int:
    """A JSON number of whole shillings (52 or 52.0, not 52.5), of any size."""
    if value is None:
        raise ValueError("Amount is required")
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ValueError("Amount must be a number")
    if isinstance(value, float) and not math.isfinite(value):
        raise ValueError("Amount must be a finite number")
    if value != int(value):
        raise ValueError("Amount must be a whole number of KES (M-Pesa takes no cents)")
    return int(value)


def whole_shillings(value: Any, low: int, high: int) -> int:
    """A JSON number of whole shillings within [low, high]."""
    value = whole_amount(value)
    if not low <= value <= high:
        raise ValueError(f"Amount must be between {low:,} and {high:,} KES")
    return value


def safaricom_phone(value: Any) -> str:
    try:
        return normalise_safaricom(value)
    except InvalidPhone as exc:
        raise ValueError(str(exc)) from None


def account_reference(value: Any, default: str = "Payment") -> str:
    """What the customer's phone shows as the account: M-Pesa takes 12 characters."""
    if value is None:
        return default
    if not isinstance(value, str) or not REFERENCE.fullmatch(value):
        raise ValueError(
            "Account reference must be 1 to 12 letters, digits, spaces, dots, dashes "
            "or underscores (M-Pesa shows it on the customer's phone)"
        )
    return value


def text(value: Any, *, name: str, default: str | None = None, longest: int = 100) -> str | None:
    """Free text of 1 to `longest` characters, trimmed, with no control characters."""
    if value is None:
        return default
    if not isinstance(value, str) or not 1 <= len(value.strip()) <= longest:
        raise ValueError(f"{name} must be text of 1 to {longest} characters")
    if has_unsafe_characters(value):
        raise ValueError(f"{name} must not contain control characters")
    return value.strip()


# JSON schemas of the rules above, for the models whose fields validate with them.
PHONE_SCHEMA = {
    "type": "string",
    # the canonical forms of Safaricom's ranges; spaces, dashes and brackets are taken too
    "pattern": "^(?:\\+?254|0)" + SAFARICOM.pattern.removeprefix("^254"),
    "example": "254712345678",
    "description": "A Safaricom number as people type it: 2547..., 2541..., +254..., 07... or 01...",
}
REFERENCE_SCHEMA = {"type": "string", "pattern": f"^{REFERENCE.pattern}$", "example": "Order123"}


def shillings_schema(low: int, high: int) -> dict:
    return {"type": "integer", "minimum": low, "maximum": high, "description": "Whole Kenya shillings"}


_SAFE = r"[^\x00-\x1f\x7f-\x9f]"  # no control characters


def text_schema(longest: int) -> dict:
    """Text with something besides spaces, no control characters."""
    return {
        "type": "string",
        "minLength": 1,
        "maxLength": longest,
        "pattern": rf"^{_SAFE}*[^\s\x00-\x1f\x7f-\x9f]{_SAFE}*$",
    }


def Shillings(low: int, high: int):  # noqa: N802  (a type, spelled like one)
    return Annotated[
        int, BeforeValidator(partial(whole_shillings, low=low, high=high)), WithJsonSchema(shillings_schema(low, high))
    ]


Phone = Annotated[str, BeforeValidator(safaricom_phone), WithJsonSchema(PHONE_SCHEMA)]


def WholeNumber(name: str, low: int, high: int):  # noqa: N802
    """A query parameter of plain ASCII digits within [low, high]."""

    def check(value: Any) -> int:
        number = whole_number(value) if isinstance(value, str) else None
        if number is None or not low <= number <= high:
            raise ValueError(f"{name} must be a whole number from {low} to {high:,}")
        return number

    return Annotated[int, BeforeValidator(check), WithJsonSchema({"type": "integer", "minimum": low, "maximum": high})]


def empty_is_absent(data: Any) -> Any:
    """For a query model's `model_validator(mode="before")`: `?limit=` means no limit given."""
    return {k: v for k, v in data.items() if v != ""} if isinstance(data, dict) else data


_LABEL = r"[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?"
EMAIL = re.compile(rf"[^@\s\x00-\x1f\x7f]{{1,64}}@{_LABEL}(?:\.{_LABEL})+")


def email(value: Any) -> str:
    """An email address as Paystack takes it: local@domain.tld, at most 254 characters."""
    if not isinstance(value, str) or len(value) > 254 or not EMAIL.fullmatch(value.strip()):
        raise ValueError("email must be an email address (name@example.com)")
    return value.strip()


Email = Annotated[
    str,
    BeforeValidator(email),
    WithJsonSchema({"type": "string", "format": "email", "maxLength": 254, "example": "user@example.com"}),
]


def minor_units(value: Any, *, lowest: int, highest: int) -> int:
    """A JSON number of KES with at most two decimal places (1000, 99.5), as cents: more than 0,
    from `lowest` to `highest` KES."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ValueError("amount must be a number of KES")
    if isinstance(value, float) and not math.isfinite(value):
        raise ValueError("amount must be a finite number")
    if not (value > 0 and lowest <= value <= highest):
        low = "more than 0" if lowest <= 0 else f"from {lowest:,}"
        raise ValueError(f"amount must be {low} and at most {highest:,} KES")
    cents = Decimal(repr(value) if isinstance(value, float) else value) * 100
    if cents != cents.to_integral_value():
        raise ValueError("amount must have at most two decimal places")
    return int(cents)


def Kes(lowest: int, highest: int, description: str | None = None):  # noqa: N802  (a type, spelled like one)
    """KES with at most two decimal places, as minor units (cents)."""
    schema = {"type": "number", "maximum": highest, "multipleOf": 0.01, "example": 1000}
    schema |= {"minimum": lowest} if lowest > 0 else {"exclusiveMinimum": 0}
    if description:
        schema["description"] = description
    return Annotated[int, BeforeValidator(partial(minor_units, lowest=lowest, highest=highest)), WithJsonSchema(schema)]


METADATA_KEYS = 20


def _metadata(value):
    """A flat JSON object of at most 20 short names with short text, finite numbers, true/false or null."""
    if value is None:
        return {}
    if not isinstance(value, dict) or len(value) > METADATA_KEYS:
        raise ValueError(f"metadata must be an object of at most {METADATA_KEYS} fields")
    for name, item in value.items():
        if not 1 <= len(name) <= 50 or has_unsafe_characters(name):
            raise ValueError("metadata field names must be 1 to 50 characters, no control characters")
        if isinstance(item, str):
            if len(item) > 200 or has_unsafe_characters(item):
                raise ValueError(f"metadata.{name} must be text of at most 200 characters, no control characters")
        elif isinstance(item, float) and not math.isfinite(item):
            raise ValueError(f"metadata.{name} must be a finite number")
        elif item is not None and not isinstance(item, bool | int | float):
            raise ValueError(f"metadata.{name} must be text, a number, true, false or null")
    return value


Metadata = Annotated[
    dict,
    BeforeValidator(_metadata),
    WithJsonSchema(
        {
            "type": "object",
            "maxProperties": METADATA_KEYS,
            "additionalProperties": {"type": ["string", "number", "boolean", "null"]},
            "example": {"customerName": "John Doe", "location": "Station 1"},
        }
    ),
]
