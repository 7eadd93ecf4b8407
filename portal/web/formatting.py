"""How the portal prints money: integer minor units in, text out, never through a float."""

from decimal import Decimal

MINOR_DIGITS = 2  # KES and every currency we carry have cents


def major(minor: int) -> Decimal:
    """Minor units as an exact decimal amount: 12345 -> Decimal('123.45')."""
    return Decimal(int(minor)).scaleb(-MINOR_DIGITS)


def money(minor: int | None, currency: str | None = "KES", cents: bool = True) -> str:
    """The one money filter: 123450 -> "KES 1,234.50". With cents=False whole amounts drop
    the ".00" ("KES 1,234"), for labels where space is short; cents that exist are always shown."""
    if minor is None:
        return ""
    amount = major(minor)
    text = f"{amount:,.0f}" if not cents and minor % 100 == 0 else f"{amount:,.2f}"
    return f"{currency} {text}" if currency else text


def compact_shillings(minor: int) -> str:
    """A short whole-shilling label for chart axes and bars: 950 -> "950", 12_500 -> "12.5k", 3_000_000 -> "3M"."""
    shillings = (int(minor) + 50) // 100
    for size, suffix in ((1_000_000, "M"), (1_000, "k")):
        if shillings >= size:
            tenths = (shillings * 10 + size // 2) // size
            if tenths >= 1000:  # 100k and up: tenths would be noise
                return f"{(tenths + 5) // 10:,}{suffix}"
            whole, tenth = divmod(tenths, 10)
            return f"{whole}{suffix}" if tenth == 0 else f"{whole}.{tenth}{suffix}"
    return str(shillings)
