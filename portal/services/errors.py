"""The payment errors every dialect turns into its own error answer (services raise them)."""


class PaymentError(Exception):
    """Base of the errors a dialect turns into its own error answer; `provider` names the rail's
    provider in those answers."""

    provider = "M-Pesa"


class NotConfigured(PaymentError):
    """The merchant has not set up this rail's credentials."""


class SubscriberBusy(PaymentError):
    """The customer already has a prompt open; nothing was sent."""


class ProviderRejected(PaymentError):
    """The provider refused the request; `code` is its error code."""

    def __init__(self, code: str, message: str):
        super().__init__(message)
        self.code = code


class ProviderUnavailable(PaymentError):
    """The provider could not be reached or was too busy; nothing was sent."""


class OutcomeUnknown(PaymentError):
    """The push may have reached the customer; the payment waits for the truth."""

    def __init__(self, payment, provider: str = "M-Pesa"):
        super().__init__(f"{provider} did not confirm the request in time")
        self.payment = payment
        self.provider = provider
