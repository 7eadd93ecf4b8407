"""Identifiers shaped like Daraja's (reference §3.2, §3.3, §7.2): M-Pesa receipts, conversation
ids, and the names the simulated customers are registered under."""

import secrets
import string

from portal.timeutil import as_nairobi, utcnow

ALPHABET = string.ascii_uppercase + string.digits
FIRST_NAMES = ("JANE", "JOHN", "MARY", "PETER", "GRACE", "DAVID", "FAITH", "JAMES", "MERCY", "BRIAN")
LAST_NAMES = ("WANJIKU", "OTIENO", "KAMAU", "CHEBET", "MUTUA", "ACHIENG", "KIPROP", "NJERI", "OMONDI", "WAFULA")


def _date_letters() -> str:
    """Year (N=2019), month (A=January) and day (1-9, then A=10) of a receipt, Nairobi time."""
    now = as_nairobi(utcnow())
    year = chr(ord("N") + now.year - 2019) if now.year - 2019 < 13 else "Z"
    day = str(now.day) if now.day < 10 else chr(ord("A") + now.day - 10)
    return f"{year}{chr(ord('A') + now.month - 1)}{day}"


def receipt() -> str:
    """An M-Pesa receipt (TransID, TransactionID): 10 upper-case letters and digits."""
    # secrets, not random: receipts are unique keys, and a reseeded `random` (hypothesis does
    # that) would hand the same one out twice
    return _date_letters() + "".join(secrets.choice(ALPHABET) for _ in range(7))


def placeholder_receipt() -> str:
    """The TransactionID of a request M-Pesa refused, e.g. MAS0000000 (seen in real results)."""
    return _date_letters() + "0000000"


def conversation_id() -> str:
    """ConversationID: AG_, the Nairobi date, 20 hexadecimal characters."""
    return f"AG_{as_nairobi(utcnow()):%Y%m%d}_{secrets.token_hex(10)}"


def legacy_originator_id() -> str:
    """The OriginatorConversationID Daraja makes when the caller sends none, e.g. 29112-34801843-1."""
    n = secrets.randbelow
    return f"{1000 + n(99_000)}-{1_000_000 + n(99_000_000)}-{1 + n(3)}"


def customer_name(msisdn: str) -> tuple[str, str]:
    """The (first, last) name a simulated subscriber is registered under, the same every time."""
    digits = int(msisdn[-2:]) if msisdn[-2:].isdigit() else 0
    return FIRST_NAMES[digits % 10], LAST_NAMES[digits // 10 % 10]
