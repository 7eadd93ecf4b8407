"""Daraja's initiator security and asynchronous Results: the SecurityCredential (the initiator's
password RSA-encrypted, PKCS#1 v1.5, to Safaricom's X.509 certificate, base64; reference §7.1),
and the {"Result": {...}} envelope of B2C and Transaction Status read into a typed result,
whichever types Daraja sends its codes and values in (reference §7.3, §8)."""

import base64
from dataclasses import dataclass, field
from functools import lru_cache

from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import padding, rsa


def read_certificate(pem: str) -> x509.Certificate:
    """The certificate in `pem`; ValueError unless it is a PEM X.509 certificate of an RSA key."""
    try:
        certificate = x509.load_pem_x509_certificate(pem.encode())
    except (ValueError, UnicodeEncodeError, TypeError, AttributeError):
        raise ValueError("not a PEM X.509 certificate") from None
    if not isinstance(certificate.public_key(), rsa.RSAPublicKey):
        raise ValueError("the certificate's key is not an RSA key")
    return certificate


@lru_cache(maxsize=16)
def _public_key(pem: str) -> rsa.RSAPublicKey:
    return read_certificate(pem).public_key()


def security_credential(password: str, certificate_pem: str) -> str:
    """A fresh SecurityCredential for `password`: different on every call (PKCS#1 v1.5 pads at
    random), each decrypting to the same password. ValueError for a bad certificate."""
    return base64.b64encode(_public_key(certificate_pem).encrypt(password.encode(), padding.PKCS1v15())).decode()


@dataclass(frozen=True)
class DarajaResult:
    """One Result: codes as strings, ResultParameters and ReferenceData as Key -> Value (an item
    sent without a Value maps to None)."""

    result_type: str
    result_code: str
    result_desc: str
    originator_conversation_id: str | None
    conversation_id: str | None
    transaction_id: str | None
    parameters: dict[str, object] = field(default_factory=dict)
    reference: dict[str, object] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return self.result_code == "0"


def _items(container, name: str) -> dict[str, object]:
    """Key -> Value of ResultParameters.ResultParameter (a list, or one object) and the like."""
    items = container.get(name) if isinstance(container, dict) else None
    if isinstance(items, dict):
        items = [items]
    if not isinstance(items, list):
        return {}
    return {str(item["Key"]): item.get("Value") for item in items if isinstance(item, dict) and "Key" in item}


def _text(value) -> str | None:
    if value is None or isinstance(value, dict | list):
        return None
    return str(value)


def parse_result(body) -> DarajaResult:
    """Reads a B2C or Transaction Status Result; ValueError for anything else."""
    result = body.get("Result") if isinstance(body, dict) else None
    if not isinstance(result, dict) or _text(result.get("ResultCode")) is None:
        raise ValueError("not a Daraja Result")
    return DarajaResult(
        result_type=_text(result.get("ResultType")) or "",
        result_code=_text(result["ResultCode"]),
        result_desc=_text(result.get("ResultDesc")) or "",
        originator_conversation_id=_text(result.get("OriginatorConversationID")),
        conversation_id=_text(result.get("ConversationID")),
        transaction_id=_text(result.get("TransactionID")),
        parameters=_items(result.get("ResultParameters"), "ResultParameter"),
        reference=_items(result.get("ReferenceData"), "ReferenceItem"),
    )
