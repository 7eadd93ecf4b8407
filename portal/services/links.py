"""Signed external links: the URLs we hand providers, and the tokens in them.

A token proves a request came through a URL we handed out, nothing more: it is never
enough alone to move money out of a final state (see services/mpesa.py).
"""

import hashlib
import hmac
from urllib.parse import parse_qsl, urlencode

from flask import current_app

from portal.dialects import dialect_of

REDACTED = "redacted"


def callback_token(reference: str) -> str:
    key = current_app.config["SECRET_KEY"].encode()
    return hmac.new(key, f"stk-callback:{reference}".encode(), hashlib.sha256).hexdigest()[:40]


def callback_token_valid(reference: str | None, token: str | None) -> bool:
    if not (reference and token):
        return False
    return hmac.compare_digest(callback_token(reference).encode(), token.encode("utf-8", "surrogatepass"))


def read_query(query_string: str) -> tuple[dict, bool, str]:
    """The query's fields, whether it carries a valid callback token for its `ref`, and the
    query string as it may be stored (the token redacted)."""
    pairs = parse_qsl(query_string, keep_blank_values=True)
    args = dict(pairs)
    valid = callback_token_valid(args.get("ref"), args.get("token"))
    stored = urlencode([(k, REDACTED if k == "token" else v) for k, v in pairs]) if "token" in args else query_string
    return args, valid, stored


def merchant_ref(merchant_id: int) -> str:
    """How a URL we hand a provider for a whole merchant (not one payment) names it."""
    return f"M{merchant_id}"


def merchant_of_ref(ref) -> int | None:
    """The merchant id a merchant_ref names, or None."""
    if isinstance(ref, str) and ref[:1] == "M" and ref[1:].isascii() and ref[1:].isdigit() and len(ref) <= 11:
        ident = int(ref[1:])
        return ident if ident < 2**31 else None  # the database's integer
    return None


def external_url(endpoint: str, **values) -> str:
    """An absolute URL under PUBLIC_BASE_URL, built outside any request."""
    path = current_app.url_map.bind("localhost").build(endpoint, values)
    return current_app.config["PUBLIC_BASE_URL"] + path


def stk_callback_url(payment) -> str:
    """Where Daraja sends this payment's result: the endpoint its dialect declares, with
    the payment's reference and a token."""
    endpoint = dialect_of(payment.api).stk_callback_endpoint
    return external_url(endpoint, ref=payment.reference, token=callback_token(payment.reference))
