"""Water pricing: what an amount buys in whole liters under each rounding, the edges that are
refused, the settings a merchant may save, and where they are kept."""

import pytest
from pydantic import ValidationError

from portal.extensions import db
from portal.models import Merchant
from portal.services.water_pricing import AmountRefused, WaterPricing, preview, pricing_of, save_pricing

DEFAULT = WaterPricing()


@pytest.mark.parametrize(
    ("pricing", "requested", "amount", "liters", "difference"),
    [
        (DEFAULT, 52, 50, 10, -2),  # the document's example
        (DEFAULT, 53, 55, 11, 2),
        (DEFAULT, 50, 50, 10, 0),
        (DEFAULT, 5, 5, 1, 0),  # the smallest sale
        (DEFAULT, 10_000, 10_000, 2_000, 0),  # the largest
        (DEFAULT, 9_998, 10_000, 2_000, 2),  # nearest may round up to the largest, not past it
        (WaterPricing(rounding="down"), 54, 50, 10, -4),
        (WaterPricing(rounding="up"), 51, 55, 11, 4),
        (WaterPricing(rounding="up"), 55, 55, 11, 0),
        (WaterPricing(price_per_liter=4), 10, 12, 3, 2),  # half a liter rounds up
        (WaterPricing(price_per_liter=4), 9, 8, 2, -1),
        (WaterPricing(price_per_liter=4, rounding="down"), 10, 8, 2, -2),
        (WaterPricing(price_per_liter=7, min_amount=1, rounding="up"), 3, 7, 1, 4),
        (WaterPricing(price_per_liter=3), 10_000, 9_999, 3_333, -1),
    ],
)
def test_an_amount_buys_whole_liters(pricing, requested, amount, liters, difference):
    sale = preview(pricing, requested)
    assert (sale.requested_amount, sale.amount, sale.liters, sale.difference) == (requested, amount, liters, difference)
    assert (sale.price_per_liter, sale.currency, sale.rounding) == (pricing.price_per_liter, "KES", pricing.rounding)


@pytest.mark.parametrize(
    ("pricing", "requested", "words"),
    [
        (DEFAULT, 4, "Amount out of range: it must be between KES 5 and KES 10,000"),
        (DEFAULT, 10_001, "Amount out of range: it must be between KES 5 and KES 10,000"),
        (DEFAULT, 0, "Amount out of range"),
        (DEFAULT, -50, "Amount out of range"),
        # less than a liter, rounded to none
        (WaterPricing(price_per_liter=7, min_amount=1), 3, "Amount too small: KES 3 buys less than one liter"),
        (WaterPricing(price_per_liter=7, min_amount=1, rounding="down"), 6, "Amount too small"),
        # rounding would carry the charge past the largest sale, or under the smallest
        (
            WaterPricing(price_per_liter=3, rounding="up"),
            10_000,
            "Amount out of range: KES 10,000 is KES 10,002 in whole liters (3,334 liters)",
        ),
        (
            WaterPricing(price_per_liter=4, rounding="down"),
            7,
            "Amount out of range: KES 7 is KES 4 in whole liters (1 liter), outside KES 5 to KES 10,000",
        ),
    ],
)
def test_amounts_that_cannot_be_sold_are_refused_in_words(pricing, requested, words):
    with pytest.raises(AmountRefused) as refused:
        preview(pricing, requested)
    assert str(refused.value).startswith(words)


def test_the_defaults_are_the_documents_example():
    assert DEFAULT.model_dump() == {
        "price_per_liter": 5,
        "rounding": "nearest",
        "min_amount": 5,
        "max_amount": 10_000,
        "currency": "KES",
    }


@pytest.mark.parametrize(
    ("fields", "words"),
    [
        ({"price_per_liter": 0}, "The price per liter is a whole number of shillings from 1 to 250,000."),
        ({"price_per_liter": 5.5}, "The price per liter is a whole number"),
        ({"price_per_liter": "5"}, "The price per liter is a whole number"),
        ({"price_per_liter": True}, "The price per liter is a whole number"),
        ({"min_amount": -1}, "The smallest sale is a whole number of shillings"),
        ({"max_amount": 250_001}, "The largest sale is a whole number of shillings from 1 to 250,000."),
        ({"min_amount": 100, "max_amount": 50}, "The smallest sale cannot be more than the largest."),
        ({"price_per_liter": 60, "max_amount": 50}, "The largest sale must buy at least one liter (KES 60)."),
        ({"rounding": "sideways"}, "Input should be 'nearest', 'down' or 'up'"),
        ({"currency": "USD"}, "Input should be 'KES'"),
    ],
)
def test_pricing_that_cannot_sell_is_refused(fields, words):
    with pytest.raises(ValidationError) as refused:
        WaterPricing(**fields)
    assert words in str(refused.value)


def test_pricing_is_kept_in_the_merchants_settings_beside_the_others(app, ctx, accounts):
    merchant = db.session.get(Merchant, accounts["merchant"]["id"])
    merchant.settings = {"c2b": {"accounts": []}}
    db.session.commit()
    assert pricing_of(merchant) == DEFAULT  # nothing saved yet: the defaults
    save_pricing(merchant, WaterPricing(price_per_liter=7, rounding="up", max_amount=7_000))
    db.session.expire_all()
    merchant = db.session.get(Merchant, accounts["merchant"]["id"])
    assert merchant.settings["c2b"] == {"accounts": []}
    assert merchant.settings["water_pricing"]["price_per_liter"] == 7
    assert pricing_of(merchant) == WaterPricing(price_per_liter=7, rounding="up", max_amount=7_000)
    other = db.session.get(Merchant, accounts["other_merchant"]["id"])
    assert pricing_of(other) == DEFAULT
