"""Models: one module per aggregate. Importing this package registers every table."""

from portal.models.dead_letter import DeadLetter, DeadLetterStatus
from portal.models.escrow import Escrow, EscrowStatus
from portal.models.isp import InternetPackage, IspClient
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
from portal.models.sandbox_business import (
    SandboxB2CPayment,
    SandboxC2BPayment,
    SandboxC2BRegistration,
    SandboxKeyPair,
    SandboxShortcode,
    SandboxStatusQuery,
)
from portal.models.sandbox_paystack import (
    SandboxPaystackIntegration,
    SandboxPaystackRecipient,
    SandboxPaystackRefund,
    SandboxPaystackTransaction,
    SandboxPaystackTransfer,
)
from portal.models.sms import Sms, SmsStatus
from portal.models.water import Otp, OtpStatus, Station

__all__ = [
    "ApiKey",
    "Callback",
    "DeadLetter",
    "DeadLetterStatus",
    "Escrow",
    "EscrowStatus",
    "IdempotencyRecord",
    "InternetPackage",
    "IspClient",
    "Merchant",
    "Otp",
    "OtpStatus",
    "Payment",
    "PaymentEvent",
    "PaymentStatus",
    "SandboxApp",
    "SandboxB2CPayment",
    "SandboxC2BPayment",
    "SandboxC2BRegistration",
    "SandboxDelivery",
    "SandboxDeliveryAttempt",
    "SandboxKeyPair",
    "SandboxPaystackIntegration",
    "SandboxPaystackRecipient",
    "SandboxPaystackRefund",
    "SandboxPaystackTransaction",
    "SandboxPaystackTransfer",
    "SandboxShortcode",
    "SandboxSms",
    "SandboxStatusQuery",
    "SandboxStkRequest",
    "SandboxToken",
    "Sms",
    "SmsStatus",
    "Station",
    "User",
]
