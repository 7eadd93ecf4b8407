"""The simulated organisations' accounts, one per shortcode, opened on first use with
SANDBOX_SHORTCODE_BALANCE: C2B payments credit them, B2C payouts debit them. Each change is
one conditional UPDATE, so concurrent payouts can never take an account below zero."""

from flask import current_app
from sqlalchemy import select, update

from portal.extensions import db, dialect_insert
from portal.models import SandboxShortcode


def _open(shortcode: str) -> None:
    opening = current_app.config["SANDBOX_SHORTCODE_BALANCE"] * 100
    db.session.execute(
        dialect_insert(SandboxShortcode)
        .values(shortcode=shortcode, balance_cents=opening)
        .on_conflict_do_nothing(index_elements=["shortcode"])
    )


def _change(shortcode: str, cents: int, *conditions) -> int | None:
    _open(shortcode)
    return db.session.execute(
        update(SandboxShortcode)
        .where(SandboxShortcode.shortcode == shortcode, *conditions)
        .values(balance_cents=SandboxShortcode.balance_cents + cents)
        .returning(SandboxShortcode.balance_cents)
    ).scalar()


def credit(shortcode: str, amount: int) -> int:
    """Adds `amount` KES; the new balance in cents."""
    return _change(shortcode, amount * 100)


def debit(shortcode: str, amount: int) -> int | None:
    """Takes `amount` KES if the account holds it: the new balance in cents, or None (nothing taken)."""
    return _change(shortcode, -amount * 100, SandboxShortcode.balance_cents >= amount * 100)


def balance(shortcode: str) -> int:
    """The balance in cents (the opening balance for an account never used)."""
    cents = db.session.execute(select(SandboxShortcode.balance_cents).where(SandboxShortcode.shortcode == shortcode))
    found = cents.scalar()
    return current_app.config["SANDBOX_SHORTCODE_BALANCE"] * 100 if found is None else found


def shillings(cents: int) -> str:
    """Daraja's amount text: "48210.00"."""
    return f"{cents // 100}.{cents % 100:02d}"
