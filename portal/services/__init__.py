"""Domain logic: no flask.request, no JSON shapes, no endpoint names.

Importing this package loads every rail, so their inbox interpreters and sweeper steps
are registered wherever services are used (the app, the worker, the CLI)."""

from portal.services import dead_letters, escrow, events, idempotency, inbox, mpesa, otps, sms, sms_reports  # noqa: F401  (registration)
from portal.services.paystack import charges, transfers  # noqa: F401  (registration)
from portal.services.paystack import events as paystack_events  # noqa: F401  (registration)
