"""A refused payment in a merchant's words: what Daraja said at initiation, mapped to what
happened and what to do. The provider's own text stays on the payment page beside it."""

import re
from dataclasses import dataclass


@dataclass(frozen=True)
class Refusal:
    short: str  # fits under the status badge in a ledger row
    sentence: str  # the payment page's explanation


# Daraja reuses one code (500.001.1001) for several refusals, so the text decides (shared/reference/daraja.md §1.2).
_BY_TEXT = (
    (
        "Unable to lock subscriber",
        Refusal(
            "Customer busy with another prompt",
            "The customer already had another M-Pesa prompt open, so M-Pesa did not send this one. "
            "Nothing was charged. Ask them to finish or cancel it, then try again in about a minute.",
        ),
    ),
    (
        "Merchant does not exist",
        Refusal(
            "Business number not recognised",
            "M-Pesa does not recognise your business number. Nothing was charged. "
            "Check the business number in Settings.",
        ),
    ),
    (
        "Wrong credentials",
        Refusal(
            "Passkey not accepted",
            "M-Pesa did not accept your passkey for this business number. Nothing was charged. "
            "Check the passkey and business number in Settings.",
        ),
    ),
    (
        "Invalid Access Token",
        Refusal(
            "Daraja keys not accepted",
            "M-Pesa did not accept your Daraja keys, or your Daraja app is not enabled for payment prompts. "
            "Nothing was charged. Check your keys in Settings.",
        ),
    ),
    (
        "Spike Arrest",
        Refusal(
            "M-Pesa too busy",
            "M-Pesa was handling too many requests and turned this one away. Nothing was charged; try again shortly.",
        ),
    ),
    (
        "System is busy",
        Refusal(
            "M-Pesa too busy",
            "M-Pesa was too busy to take the request. Nothing was charged; try again in a few minutes.",
        ),
    ),
    (
        "Quota Violation",
        Refusal(
            "Daraja request limit reached",
            "Your Daraja app has used up its request allowance. Nothing was charged; try again later.",
        ),
    ),
    (
        "M-Pesa unreachable",
        Refusal(
            "M-Pesa could not be reached",
            "M-Pesa could not be reached, so the customer was never asked to pay. Nothing was charged; try again.",
        ),
    ),
)
_FIELDS = {
    "PhoneNumber": "the customer's phone number",
    "PartyA": "the customer's phone number",
    "Amount": "the amount",
    "BusinessShortCode": "your business number",
    "PartyB": "your till or business number",
    "AccountReference": "the account reference",
    "TransactionDesc": "the description",
    "CallBackURL": "the portal's result address (its public address may be set wrongly)",
}
_INVALID_FIELD = re.compile(r"Invalid ([A-Za-z]+)")
_UNKNOWN = Refusal(
    "Refused by M-Pesa",
    "M-Pesa refused to send the payment prompt, so the customer was never asked to pay. Nothing was charged.",
)


def refusal(payment) -> Refusal | None:
    """The explanation for a refused payment; None for any other payment."""
    if not payment.refused:
        return None
    text = payment.result_desc or ""
    for needle, words in _BY_TEXT:
        if needle.lower() in text.lower():
            return words
    match = _INVALID_FIELD.search(text)
    if match and match[1] in _FIELDS:
        what = _FIELDS[match[1]]
        return Refusal(
            f"M-Pesa did not accept {what.split(' (')[0]}",
            f"M-Pesa did not accept {what}, so the customer was never asked to pay. Nothing was charged.",
        )
    return _UNKNOWN
