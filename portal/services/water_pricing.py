"""Water pricing per merchant: what a liter costs, how a requested amount is rounded to whole
liters, and the smallest and largest sale. Kept in `Merchant.settings["water_pricing"]`,
always through `WaterPricing`, which refuses what cannot be sold; `preview` is the one rule
that turns a requested amount into what is charged, for the preview and the payment alike.

`preview` raises AmountRefused, whose message is meant for the customer at the kiosk."""

from dataclasses import dataclass
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from portal.extensions import db
from portal.models import Merchant

SETTINGS_KEY = "water_pricing"
MAX_SALE = 250_000  # KES: Daraja's ceiling for one payment
Rounding = Literal["nearest", "down", "up"]
ROUNDING: tuple[str, ...] = Rounding.__args__


class AmountRefused(ValueError):
    """The amount cannot be sold as whole liters within the merchant's range."""


def _shillings(value, what: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= MAX_SALE:
        raise ValueError(f"The {what} is a whole number of shillings from 1 to {MAX_SALE:,}.")
    return value


class WaterPricing(BaseModel):
    """A merchant's water pricing; the defaults are the water document's example (KES 5 a liter,
    to the nearest liter), selling from KES 5 to KES 10,000 at a time."""

    model_config = ConfigDict(frozen=True, extra="ignore")  # a setting dropped later does not break old rows

    price_per_liter: int = Field(5, description="KES per liter, whole shillings")
    rounding: Rounding = Field("nearest", description="How an amount becomes whole liters: nearest, down or up")
    min_amount: int = Field(5, description="The smallest sale, KES")
    max_amount: int = Field(10_000, description="The largest sale, KES")
    currency: Literal["KES"] = "KES"

    @field_validator("price_per_liter", "min_amount", "max_amount", mode="before")
    @classmethod
    def _whole(cls, value, info):
        what = {"price_per_liter": "price per liter", "min_amount": "smallest sale", "max_amount": "largest sale"}
        return _shillings(value, what[info.field_name])

    @model_validator(mode="after")
    def _sellable(self) -> "WaterPricing":
        if self.min_amount > self.max_amount:
            raise ValueError("The smallest sale cannot be more than the largest.")
        if self.price_per_liter > self.max_amount:
            raise ValueError(f"The largest sale must buy at least one liter (KES {self.price_per_liter:,}).")
        return self


@dataclass(frozen=True)
class Preview:
    """What a requested amount buys: `amount` (KES) is what is charged, for `liters` liters."""

    requested_amount: int
    amount: int
    liters: int
    price_per_liter: int
    currency: str
    rounding: str

    @property
    def difference(self) -> int:
        """Charged minus requested: negative when rounding gave the customer less to pay."""
        return self.amount - self.requested_amount


def whole_liters(amount: int, price: int, rounding: str) -> int:
    """`amount` KES in liters at `price` KES a liter; nearest rounds a half liter up."""
    liters, rest = divmod(amount, price)
    if rest == 0 or rounding == "down":
        return liters
    if rounding == "up":
        return liters + 1
    return liters + (1 if 2 * rest >= price else 0)


def preview(pricing: WaterPricing, requested: int) -> Preview:
    """The sale of `requested` whole KES: refused (AmountRefused) outside the merchant's range,
    when it buys no whole liter, or when rounding carries the charge outside the range."""
    low, high, price = pricing.min_amount, pricing.max_amount, pricing.price_per_liter
    if not low <= requested <= high:
        raise AmountRefused(f"Amount out of range: it must be between KES {low:,} and KES {high:,}")
    liters = whole_liters(requested, price, pricing.rounding)
    if liters == 0:
        raise AmountRefused(f"Amount too small: KES {requested:,} buys less than one liter (KES {price:,} a liter)")
    amount = liters * price
    if not low <= amount <= high:
        raise AmountRefused(
            f"Amount out of range: KES {requested:,} is KES {amount:,} in whole liters "
            f"({liters:,} liter{'' if liters == 1 else 's'}), "
            f"outside KES {low:,} to KES {high:,}"
        )
    return Preview(requested, amount, liters, price, pricing.currency, pricing.rounding)


def pricing_of(merchant: Merchant) -> WaterPricing:
    """The merchant's pricing; the defaults until it saves its own."""
    return WaterPricing.model_validate((merchant.settings or {}).get(SETTINGS_KEY) or {})


def save_pricing(merchant: Merchant, pricing: WaterPricing) -> None:
    """Stores `pricing` (already validated by its model) and commits; other settings are kept."""
    merchant.settings = {**(merchant.settings or {}), SETTINGS_KEY: pricing.model_dump()}
    db.session.commit()
