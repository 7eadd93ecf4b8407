"""A payout's attempts, shared by the rails that pay out (B2C, Paystack transfers): which attempts
are known not to have gone through, and how long the latest stays in doubt.

An attempt is presumed to have gone through until proven otherwise; `meta["cleared"]` is the last
attempt proven not to have, and `meta["attempt_sent_at"]` (Unix seconds) when the latest was sent.
"""

import time

from flask import current_app

from portal.models import Payment


def cleared(payment: Payment) -> int:
    """The last attempt known not to have gone through (0: none was ever sent)."""
    value = (payment.meta or {}).get("cleared", 0)
    return value if isinstance(value, int) else 0


def clear(payment: Payment, attempt: int, why: str) -> None:
    """Records that `attempt` (and every one before it) did not go through, and why."""
    payment.meta = {**(payment.meta or {}), "cleared": max(attempt, cleared(payment)), "last_cleared_why": why}


def still_in_doubt(payment: Payment, setting: str) -> float:
    """Seconds until the provider's "no such transaction" proves the latest attempt never reached it
    (0: now); `setting` names the config value of the rail's doubt window."""
    sent = (payment.meta or {}).get("attempt_sent_at")
    if not isinstance(sent, (int, float)):
        return 0.0
    left = float(current_app.config[setting]) - (time.time() - sent)
    return max(left, 0.0)
