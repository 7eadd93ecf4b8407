"""Kenyan phone numbers: parse what people type, answer the 254XXXXXXXXX form (2547.. / 2541.. for Safaricom)."""

import re

import phonenumbers

# Safaricom's mobile ranges (shared/reference/daraja.md §9.6). Portability makes a prefix
# only a hint, but Daraja itself refuses numbers outside them.
SAFARICOM = re.compile(r"^254(7(?:[0-2]\d|9\d|4[0-35689]|5[7-9]|6[89])|11[0-5])\d{6}$")


class InvalidPhone(ValueError):
    """The message is meant for the person who typed the number."""


def normalise_safaricom(raw, *, short_form: bool = False) -> str:
    """Accepts 2547.., +2547.., 07.., 01.. (spaces and dashes allowed), and with `short_form`
    the nine digits after the 0 (712345678); returns 254XXXXXXXXX."""
    msisdn = normalise_kenyan(raw, short_form=short_form)
    if not SAFARICOM.match(msisdn):
        raise InvalidPhone("Phone number must be a valid Safaricom number (07XX or 01XX)")
    return msisdn


def normalise_kenyan(raw, *, short_form: bool = False) -> str:
    """Any Kenyan number (Safaricom, Airtel, Telkom...) in the forms normalise_safaricom takes:
    returns 254XXXXXXXXX."""
    if raw is None or (isinstance(raw, str) and not raw.strip()):
        raise InvalidPhone("Phone number is required")
    if isinstance(raw, bool) or not isinstance(raw, (str, int)):
        raise InvalidPhone("Phone number must be a string of digits")
    if isinstance(raw, int) and not 0 <= raw < 10**12:  # before str(): a huge int is costly to print
        raise InvalidPhone("Phone number must be 12 digits in the format 254XXXXXXXXX")
    if isinstance(raw, str) and len(raw) > 32:
        raise InvalidPhone("Phone number must be 12 digits in the format 254XXXXXXXXX")
    text = re.sub(r"[\s\-()]", "", str(raw))
    if not re.fullmatch(r"\+?[0-9]+", text):  # ASCII digits: other scripts' digits are not a phone number here
        raise InvalidPhone("Phone number must contain digits only")
    if short_form and re.fullmatch(r"[17][0-9]{8}", text):  # 712345678: the number without its 0
        text = "0" + text
    if not (text.startswith(("254", "+254")) or (text.startswith("0") and len(text) == 10)):
        raise InvalidPhone("Phone number must start with 254")
    if len(text.lstrip("+")) not in (10, 12):  # 2540711500009 is not 254711500009 with a typo forgiven
        raise InvalidPhone("Phone number must be 12 digits in the format 254XXXXXXXXX")
    try:
        parsed = phonenumbers.parse(text if not text.startswith("254") else "+" + text, "KE")
    except phonenumbers.NumberParseException:
        raise InvalidPhone("Phone number must be 12 digits in the format 254XXXXXXXXX") from None
    national = str(parsed.national_number)
    msisdn = "254" + national
    if parsed.country_code != 254 or len(msisdn) != 12:
        raise InvalidPhone("Phone number must be 12 digits in the format 254XXXXXXXXX")
    return msisdn
