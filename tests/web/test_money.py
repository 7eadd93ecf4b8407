"""Money is printed from integer minor units by one filter, never through a float."""

import os
import re

import pytest

from portal import ROOT
from portal.web.formatting import compact_shillings, money


@pytest.mark.parametrize(
    "minor,kwargs,shown",
    [
        (123450, {}, "KES 1,234.50"),
        (10000, {}, "KES 100.00"),
        (5, {}, "KES 0.05"),
        (0, {}, "KES 0.00"),
        (123400, {"cents": False}, "KES 1,234"),
        (123450, {"cents": False}, "KES 1,234.50"),
        (9_007_199_254_740_993, {}, "KES 90,071,992,547,409.93"),  # past a double's exact integers
        (100, {"currency": None}, "1.00"),
        (None, {}, ""),
    ],
)
def test_money_filter(minor, kwargs, shown):
    assert money(minor, **kwargs) == shown


@pytest.mark.parametrize(
    "minor,shown",
    [
        (0, "0"),
        (95000, "950"),
        (100000, "1k"),
        (1250000, "12.5k"),
        (25000000, "250k"),
        (300000000, "3M"),
        (123456789000, "1,235M"),
    ],
)
def test_compact_chart_labels(minor, shown):
    assert compact_shillings(minor) == shown


def sources(*folders, suffix):
    for folder in folders:
        for base, _, files in os.walk(os.path.join(ROOT, folder)):
            for name in files:
                if name.endswith(suffix):
                    with open(os.path.join(base, name), encoding="utf-8") as f:
                        yield os.path.relpath(os.path.join(base, name), ROOT), f.read()


def test_templates_and_portal_code_never_divide_money_into_a_float():
    """Every amount goes through the money filter (or Decimal, for the CSV): none is divided by 100."""
    floaty = re.compile(r"(amount|volume)\w*\s*/\s*100|\{:,\.[0-9]f\}|'%\.2f'")
    found = [
        (path, m.group(0))
        for path, text in [*sources("templates", suffix=".html"), *sources("portal/web", suffix=".py")]
        for m in floaty.finditer(text)
    ]
    found += [
        (path, m.group(0))
        for path, text in sources("portal/services", suffix=".py")
        if path.endswith(("ledger.py", "stats.py"))
        for m in floaty.finditer(text)
    ]
    assert found == []
