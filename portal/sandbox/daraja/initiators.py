"""The Daraja simulator's initiators: its RSA key pair and self-signed X.509 certificate, and the
check of a SecurityCredential (the initiator's password, RSA PKCS#1 v1.5 encrypted to that
certificate, base64; reference §7.1).

The pair is made once and kept in the database (the private key encrypted at rest), so every
process decrypts with the same key. A process that made a pair keeps it and stores it again if
the table is ever emptied (the tests empty every table between tests; a new 2048-bit key costs
a tenth of a second or more)."""

import base64
import binascii
import secrets
from datetime import UTC, datetime, timedelta
from functools import lru_cache

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from cryptography.x509.oid import NameOID
from sqlalchemy import Row, bindparam, select

from portal.extensions import db, dialect_insert
from portal.models import SandboxApp, SandboxKeyPair
from portal.timeutil import utcnow

KEY_NAME = "daraja"
_made: dict[str, tuple[str, str]] = {}  # name -> (certificate PEM, private key PEM) this process made


def certificate_pem() -> str:
    """The certificate merchants encrypt their initiator password to (PEM)."""
    return _key_pair()[0]


def _key_pair() -> tuple[str, str]:
    query = select(SandboxKeyPair.certificate, SandboxKeyPair.private_key).where(SandboxKeyPair.name == KEY_NAME)
    row = db.session.execute(query).first()
    if row is None:
        certificate, private_key = _made.get(KEY_NAME) or _made.setdefault(KEY_NAME, _generate())
        # Several processes may get here at once: the first row stored wins, the others read it.
        db.session.execute(
            dialect_insert(SandboxKeyPair)
            .values(name=KEY_NAME, certificate=certificate, private_key=private_key, created_at=utcnow())
            .on_conflict_do_nothing(index_elements=["name"])
        )
        row = db.session.execute(query).one()
    return row[0], row[1]


def _generate() -> tuple[str, str]:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    name = x509.Name(
        [
            x509.NameAttribute(NameOID.COUNTRY_NAME, "KE"),
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, "M-Pesa portal sandbox"),
            x509.NameAttribute(NameOID.COMMON_NAME, "Daraja simulator"),
        ]
    )
    now = datetime.now(UTC)
    certificate = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(days=1))
        .not_valid_after(now + timedelta(days=3650))
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    private = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    return certificate.public_bytes(serialization.Encoding.PEM).decode(), private.decode()


@lru_cache(maxsize=4)
def _private_key(pem: str) -> rsa.RSAPrivateKey:
    return serialization.load_pem_private_key(pem.encode(), password=None)


_INITIATOR = select(SandboxApp.initiator_name, SandboxApp.initiator_password).where(
    SandboxApp.id == bindparam("app_id")
)  # deferred on the model: only B2C and Transaction Status read them, in this one statement


def credential_is_valid(app: SandboxApp | Row, initiator_name: str, credential: str) -> bool:
    """Whether `credential` decrypts, with the simulator's key, to `app`'s initiator password and
    `initiator_name` is its initiator. Anything else (not base64, not for this key, the wrong
    password or name) is Daraja's "The initiator information is invalid"."""
    name, stored = db.session.execute(_INITIATOR, {"app_id": app.id}).one()
    if not name or not stored or initiator_name != name:
        return False
    try:
        encrypted = base64.b64decode(credential, validate=True)
        password = _private_key(_key_pair()[1]).decrypt(encrypted, padding.PKCS1v15())
    except (binascii.Error, ValueError):  # not base64 (or not ASCII), or not a block for this key
        return False
    return secrets.compare_digest(password, stored.encode())
