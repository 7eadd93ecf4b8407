"""Secrets at rest: a column type that stores Fernet ciphertext and hands back plaintext."""

from functools import lru_cache

from cryptography.fernet import Fernet, InvalidToken
from flask import current_app
from sqlalchemy.types import Text, TypeDecorator


def _fernet() -> Fernet:
    return _fernet_for(current_app.config["ENCRYPTION_KEY"])


@lru_cache(maxsize=8)
def _fernet_for(key: str) -> Fernet:  # built once per key, not on every secret read
    return Fernet(key.encode())


class EncryptedText(TypeDecorator):
    """Text encrypted with the app's ENCRYPTION_KEY; None stays None."""

    impl = Text
    cache_ok = True

    def process_bind_param(self, value, dialect):
        if value is None:
            return None
        return _fernet().encrypt(value.encode()).decode()

    def process_result_value(self, value, dialect):
        if value is None:
            return None
        try:
            return _decrypt(current_app.config["ENCRYPTION_KEY"], value)
        except InvalidToken as exc:  # wrong ENCRYPTION_KEY: fail loudly, never return ciphertext
            raise RuntimeError("cannot decrypt a stored secret: is ENCRYPTION_KEY the one it was stored with?") from exc


@lru_cache(maxsize=1024)
def _decrypt(key: str, token: str) -> str:
    """A stored secret in clear. Every API request loads its merchant with five secrets, and each
    Fernet decryption costs about 30 µs: the same ciphertext is decrypted once per process. (The
    process holds these secrets in clear whenever it uses them; an InvalidToken is not cached.)"""
    return _fernet_for(key).decrypt(token.encode()).decode()
