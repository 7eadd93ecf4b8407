"""Models: one module per aggregate. Importing this package registers every table."""

from portal.models.dead_letter import DeadLetter, DeadLetterStatus
from portal.models.merchant import ApiKey, Merchant, User
from portal.models.payment import Callback, IdempotencyRecord, Payment, PaymentEvent, PaymentStatus
from portal.models.sandbox import (
    SandboxApp,
    SandboxDelivery,
    SandboxDeliveryAttempt,
    SandboxSms,
    SandboxStkRequest,
    SandboxToken,
)

__all__ = [
    "ApiKey",
    "Callback",
    "DeadLetter",
    "DeadLetterStatus",
    "IdempotencyRecord",
    "Merchant",
    "Payment",
    "PaymentEvent",
    "PaymentStatus",
    "SandboxApp",
    "SandboxDelivery",
    "SandboxDeliveryAttempt",
    "SandboxSms",
    "SandboxStkRequest",
    "SandboxToken",
    "User",
]
