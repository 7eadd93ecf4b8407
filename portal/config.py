"""Configuration: one typed Config read once from the environment (and `.env`).

Defaults are the embedded mode: an SQLite file, no Redis, the sandbox on.
Production refuses to start without its secrets.
"""
import base64
import hashlib
import os
from dataclasses import dataclass, field, fields

from dotenv import load_dotenv

DEV_SECRET_KEY = "dev-only-secret-key-change-me"


def _bool(value: str | None, default: bool) -> bool:
    if value is None or value == "":
        return default
    return value.strip().lower() in {"1", "true", "yes", "on"}


def _database_url(raw: str | None, instance_path: str) -> str:
    if not raw:
        return "sqlite:///" + os.path.join(instance_path, "portal.db")
    if raw.startswith("postgres://"):  # Heroku-style scheme SQLAlchemy no longer accepts
        return "postgresql://" + raw[len("postgres://"):]
    return raw


def derive_fernet_key(secret_key: str) -> str:
    """A Fernet key derived from SECRET_KEY, for installs that set no ENCRYPTION_KEY."""
    digest = hashlib.sha256(b"portal-fernet:" + secret_key.encode()).digest()
    return base64.urlsafe_b64encode(digest).decode()


@dataclass
class Config:
    # "production" enforces secrets and turns the sandbox off by default.
    ENV: str = "development"
    # Signs sessions, CSRF tokens and callback tokens.
    SECRET_KEY: str = DEV_SECRET_KEY
    # Fernet key for provider credentials at rest; derived from SECRET_KEY when unset.
    ENCRYPTION_KEY: str = ""
    # SQLAlchemy URL; default an SQLite file under instance/.
    SQLALCHEMY_DATABASE_URI: str = ""
    # Redis for queues, token cache and rate limits; empty = embedded substitute.
    REDIS_URL: str = ""
    # Base of every callback URL handed to a provider.
    PUBLIC_BASE_URL: str = "http://127.0.0.1:5000"
    # Mount the provider simulators and talk to them instead of the real providers.
    SANDBOX: bool = True
    # Seconds the sandbox waits before answering a prompt with a callback.
    SANDBOX_CALLBACK_DELAY: float = 2.0
    # Seconds an interactive prompt on an open virtual phone waits before it times out (1037).
    SANDBOX_PROMPT_TIMEOUT: float = 60.0
    # Sandbox M-Pesa balance in KES: larger STK amounts fail with ResultCode 1.
    SANDBOX_BALANCE: int = 1000
    # How many times the sandbox delivers each callback (fault switch: duplicates).
    SANDBOX_CALLBACK_COPIES: int = 1
    # Daraja base URL; empty = the sandbox under PUBLIC_BASE_URL (or production when SANDBOX is off).
    DARAJA_BASE_URL: str = ""
    # Seconds to wait for Daraja (connect, read).
    DARAJA_TIMEOUT: float = 15.0
    # Comma-separated source IPs allowed to post Daraja callbacks; empty = any.
    DARAJA_CALLBACK_IPS: str = ""
    # Rate limiting switch (tests turn it on only where limits are the subject).
    RATELIMIT_ENABLED: bool = True
    # Checkout API: requests per IP on every route, and on payment initiation.
    CHECKOUT_RATE_LIMIT: str = "100 per 15 minutes"
    CHECKOUT_INITIATE_RATE_LIMIT: str = "10 per minute"
    # Portal sign-in attempts per IP.
    LOGIN_RATE_LIMIT: str = "10 per minute"
    # Sweeper: how often it runs, when it first asks Daraja about a silent payment,
    # how often it asks again, and when it gives up (timeout), all in seconds.
    SWEEP_INTERVAL: float = 30.0
    SWEEP_QUERY_AFTER: float = 60.0
    SWEEP_QUERY_EVERY: float = 30.0
    SWEEP_TIMEOUT_AFTER: float = 1800.0
    # Seconds a payment may stay pending (no acknowledgement from M-Pesa) before the sweeper settles it.
    SWEEP_PENDING_AFTER: float = 120.0
    # Seconds an Idempotency-Key's answer is kept (at least a day).
    IDEMPOTENCY_TTL: float = 86400.0
    # Largest request body in bytes; larger ones are refused with 413 before they are read.
    MAX_CONTENT_LENGTH: int = 65536
    # Number of reverse proxies in front of the app whose X-Forwarded-For is trusted.
    TRUSTED_PROXIES: int = 0
    # Log level for the app and the worker.
    LOG_LEVEL: str = "INFO"
    # Not settings, but Flask's own keys derived from the above.
    SQLALCHEMY_ENGINE_OPTIONS: dict = field(default_factory=dict)

    @classmethod
    def from_env(cls, instance_path: str) -> "Config":
        load_dotenv(override=False)
        env = os.environ.get
        prod = env("APP_ENV", "development") == "production"
        cfg = cls(
            ENV="production" if prod else "development",
            SECRET_KEY=env("SECRET_KEY") or ("" if prod else DEV_SECRET_KEY),
            ENCRYPTION_KEY=env("ENCRYPTION_KEY", ""),
            SQLALCHEMY_DATABASE_URI=_database_url(env("DATABASE_URL"), instance_path),
            REDIS_URL=env("REDIS_URL", ""),
            PUBLIC_BASE_URL=env("PUBLIC_BASE_URL", cls.PUBLIC_BASE_URL).rstrip("/"),
            SANDBOX=_bool(env("SANDBOX"), not prod),
            RATELIMIT_ENABLED=_bool(env("RATELIMIT_ENABLED"), True),
            DARAJA_BASE_URL=env("DARAJA_BASE_URL", "").rstrip("/"),
            DARAJA_CALLBACK_IPS=env("DARAJA_CALLBACK_IPS", ""),
            TRUSTED_PROXIES=int(env("TRUSTED_PROXIES", "0")),
            LOG_LEVEL=env("LOG_LEVEL", "INFO"),
        )
        for name in ("SANDBOX_CALLBACK_DELAY", "SANDBOX_PROMPT_TIMEOUT", "SWEEP_INTERVAL", "SWEEP_QUERY_AFTER",
                     "SWEEP_QUERY_EVERY", "SWEEP_TIMEOUT_AFTER", "DARAJA_TIMEOUT", "SWEEP_PENDING_AFTER",
                     "IDEMPOTENCY_TTL"):
            if env(name):
                setattr(cfg, name, float(env(name)))
        for name in ("SANDBOX_BALANCE", "SANDBOX_CALLBACK_COPIES", "MAX_CONTENT_LENGTH"):
            if env(name):
                setattr(cfg, name, int(env(name)))
        for name in ("CHECKOUT_RATE_LIMIT", "CHECKOUT_INITIATE_RATE_LIMIT", "LOGIN_RATE_LIMIT"):
            if env(name):
                setattr(cfg, name, env(name))
        return cfg

    def finalise(self) -> dict:
        """Checks the settings and returns them as Flask config keys."""
        if self.ENV == "production":
            missing = [n for n in ("SECRET_KEY", "ENCRYPTION_KEY", "REDIS_URL")
                       if not getattr(self, n)]
            if missing or self.SECRET_KEY == DEV_SECRET_KEY:
                raise RuntimeError(f"production needs these settings: {', '.join(missing) or 'SECRET_KEY'}")
        if not self.ENCRYPTION_KEY:
            self.ENCRYPTION_KEY = derive_fernet_key(self.SECRET_KEY)
        if self.SQLALCHEMY_DATABASE_URI.startswith("sqlite"):
            # Live-server threads and the in-process worker share the file.
            self.SQLALCHEMY_ENGINE_OPTIONS = {"connect_args": {"timeout": 30, "check_same_thread": False}}
        else:
            self.SQLALCHEMY_ENGINE_OPTIONS = {"pool_pre_ping": True, "pool_size": 10, "max_overflow": 30}
        values = {f.name: getattr(self, f.name) for f in fields(self)}
        values.update(
            SQLALCHEMY_TRACK_MODIFICATIONS=False,
            SESSION_COOKIE_HTTPONLY=True,
            SESSION_COOKIE_SAMESITE="Lax",
            SESSION_COOKIE_SECURE=self.ENV == "production",
            REMEMBER_COOKIE_HTTPONLY=True,
            WTF_CSRF_TIME_LIMIT=None,
            RATELIMIT_STORAGE_URI=self.REDIS_URL or "memory://",
            RATELIMIT_HEADERS_ENABLED=True,
        )
        return values
