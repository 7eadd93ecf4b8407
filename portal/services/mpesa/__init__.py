"""The M-Pesa rail: one module per Daraja product (STK today; C2B, B2C and transaction
status join it). Importing the package registers its inbox interpreters and sweeper steps."""

from portal.services.mpesa import b2c, c2b, stk_inbox, sweeps  # noqa: F401  (registration)
from portal.services.mpesa.client import daraja_for
from portal.services.mpesa.stk import (
    StkResult,
    apply_stk_result,
    ask_now,
    initiate_stk_push,
    query_and_apply,
    status_for_result,
)

__all__ = [
    "StkResult",
    "apply_stk_result",
    "ask_now",
    "daraja_for",
    "initiate_stk_push",
    "query_and_apply",
    "status_for_result",
]
