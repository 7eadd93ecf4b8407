"""Status checks that ask Daraja on a client's behalf (STK query), at most once per payment per
window however often clients poll, so a busy storefront cannot trip Daraja's spike arrest.

The window is claimed by a compare-and-set on `payments.last_queried_at`, the column the
sweeper's own queries use: of any number of concurrent polls (in any process) exactly one asks,
the sweeper and the polls share one rhythm per payment, and the claim is in the database that
is the truth anyway (Redis may lose everything; a lost claim would only mean an extra question).
The row is read to answer the poll regardless, so a poll inside the window costs no statement
of its own. No connection is held while Daraja is asked.
"""

import logging
from datetime import timedelta

from sqlalchemy import bindparam, or_, update

from portal.extensions import db
from portal.models import Merchant, Payment, PaymentStatus
from portal.providers.daraja import DarajaError, DarajaUnavailable
from portal.services.errors import NotConfigured
from portal.services.mpesa.client import daraja_for
from portal.services.mpesa.stk import StkResult, apply_stk_result
from portal.timeutil import utcnow

S = PaymentStatus
log = logging.getLogger(__name__)
# Still open and known to Daraja; a final payment is answered from the database without asking.
ASKABLE = (S.PROCESSING, S.TIMEOUT)

_PAYMENTS = Payment.__table__
_CLAIM = (
    update(_PAYMENTS)
    .where(
        _PAYMENTS.c.id == bindparam("_id"),
        or_(_PAYMENTS.c.last_queried_at.is_(None), _PAYMENTS.c.last_queried_at <= bindparam("_cutoff")),
    )
    .values(last_queried_at=bindparam("_now"))
)


def refresh(payment: Payment, every: float) -> Payment:
    """Asks Daraja about `payment` if it is still open and nobody (poll or sweeper) asked in the
    last `every` seconds, applies the answer by the callback's rules (0 completed, 1032
    cancelled, 1037 timeout, else failed; nothing while Daraja says it is being processed) and
    returns the payment as it now stands. Daraja's refusals and outages are logged, never
    raised: the stored status stands until the next window."""
    if payment.status not in ASKABLE or not payment.checkout_request_id:
        return payment
    now = utcnow()
    cutoff = now - timedelta(seconds=every)
    if payment.last_queried_at is not None and payment.last_queried_at > cutoff:
        return payment
    claimed = db.session.execute(_CLAIM, {"_id": payment.id, "_cutoff": cutoff, "_now": now}).rowcount
    if not claimed:  # another poll took this window a moment ago
        return payment
    try:
        client = daraja_for(db.session.get(Merchant, payment.merchant_id))
    except NotConfigured:
        db.session.commit()
        return payment
    checkout_id = payment.checkout_request_id
    db.session.commit()  # the claim is visible to every other poll before Daraja is asked
    try:
        result = client.stk_query(checkout_id)
    except (DarajaError, DarajaUnavailable) as exc:
        log.warning("STK query for payment %s failed; answering the stored status: %s", payment.id, exc)
        return payment
    if not result.pending:
        apply_stk_result(payment, StkResult(result.result_code, result.result_desc or ""), source="query")
        db.session.commit()
    return payment
