"""Field rules every JSON dialect shares: whole-shilling amounts, Safaricom phones, the texts
M-Pesa shows the customer. Each raises ValueError with a sentence for the person who sent
the request; the Annotated types carry the rule and its JSON schema together, so the OpenAPI
document says what the validator does."""

import math
import re
from functools import partial
from typing import Annotated, Any

from pydantic import BeforeValidator, WithJsonSchema

from portal.api.parsing import has_unsafe_characters
from portal.services.phones import InvalidPhone, normalise_safaricom

REFERENCE = re.compile(r"[A-Za-z0-9][A-Za-z0-9 _.\-]{0,11}")


def whole_shillings(value: Any, low: int, high: int) -> int:
    """A JSON number of whole shillings within [low, high]."""
    if value is None:
        raise ValueError("Amount is required")
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ValueError("Amount must be a number")
    if isinstance(value, float) and not math.isfinite(value):
        raise ValueError("Amount must be a finite number")
    if value != int(value):
        raise ValueError("Amount must be a whole number of KES (M-Pesa takes no cents)")
    if not low <= value <= high:
        raise ValueError(f"Amount must be between {low:,} and {high:,} KES")
    return int(value)


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


def Shillings(low: int, high: int):  # noqa: N802  (a type, spelled like one)
    return Annotated[
        int,
        BeforeValidator(partial(whole_shillings, low=low, high=high)),
        WithJsonSchema({"type": "integer", "minimum": low, "maximum": high, "description": "Whole Kenya shillings"}),
    ]


Phone = Annotated[
    str,
    BeforeValidator(safaricom_phone),
    WithJsonSchema(
        {
            "type": "string",
            "example": "254712345678",
            "description": "A Safaricom number as people type it: 2547..., +2547..., 07... or 01...",
        }
    ),
]
