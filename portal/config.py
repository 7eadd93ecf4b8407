"""Configuration: one typed Config that pydantic-settings reads from the environment and `.env`.

Each field is one setting, read under its own name (two under an alias); defaults are the
embedded mode (SQLite under instance/, no Redis, sandbox on). Production refuses to start without its secrets.
"""

import base64
import hashlib
import hmac
import os
from typing import Any, Literal

from pydantic import Field, ValidationError, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
INSTANCE_PATH = os.path.join(ROOT, "instance")
ENV_FILE = os.path.join(ROOT, ".env")
DEV_SECRET_KEY = "dev-only-secret-key-change-me"


class ConfigError(RuntimeError):
    """A setting is missing or malformed; the message names the variable."""


def derive_fernet_key(secret_key: str) -> str:
    """A Fernet key derived from SECRET_KEY, for installs that set no ENCRYPTION_KEY."""
    digest = hashlib.sha256(b"portal-fernet:" + secret_key.encode()).digest()
    return base64.urlsafe_b64encode(digest).decode()


def derive_secret(secret_key: str, purpose: str) -> str:
    """A stable secret for `purpose` derived from SECRET_KEY (never written in the code)."""
    return hmac.new(secret_key.encode(), purpose.encode(), hashlib.sha256).hexdigest()


class Config(BaseSettings):
    """Every setting of the app; field names are the Flask config keys the code reads."""

    model_config = SettingsConfigDict(
        env_file=ENV_FILE,
        env_file_encoding="utf-8",
        case_sensitive=True,
        env_ignore_empty=True,  # VAR= in .env or the shell means "use the default"
        extra="ignore",  # .env also holds variables for other tools (FLASK_APP, PORT)
        validate_by_name=True,  # create_app(overrides) passes Flask keys, even for aliased fields
        validate_by_alias=True,
    )

    # "production" enforces the secrets below and turns the sandbox off by default (env: APP_ENV).
    ENV: Literal["development", "production"] = Field("development", validation_alias="APP_ENV")
    # Signs sessions, CSRF tokens and callback tokens; production refuses the dev default.
    SECRET_KEY: str = DEV_SECRET_KEY
    # Fernet key for provider credentials at rest; derived from SECRET_KEY when unset.
    ENCRYPTION_KEY: str = ""
    # SQLAlchemy URL (env: DATABASE_URL; postgres:// accepted); default an SQLite file under instance/.
    SQLALCHEMY_DATABASE_URI: str = Field("", validation_alias="DATABASE_URL")
    # PostgreSQL pool per process: as many connections as the web process has threads (the
    # Procfile's 40), all kept open. Overflow connections are closed as soon as they are handed
    # back: under steady load that opened and closed 10 to 20 connections a second, each a new
    # server process (a third of the machine's CPU in bench/callback_ingest.py).
    DB_POOL_SIZE: int = Field(40, ge=1)
    DB_MAX_OVERFLOW: int = Field(0, ge=0)
    # Seconds after which a pooled connection is replaced, before a server or proxy drops it idle.
    DB_POOL_RECYCLE: int = Field(1800, ge=1)
    # Redis for queues, token cache and rate limits; empty = an embedded Valkey server (embedded mode).
    REDIS_URL: str = ""
    # Base of every callback URL handed to a provider; goes with the port the app is served on.
    PUBLIC_BASE_URL: str = "http://127.0.0.1:5000"
    # Mount the provider simulators and talk to them instead of the real providers; default: not production.
    SANDBOX: bool | None = None
    # Seconds the sandbox waits before answering a prompt with a callback.
    SANDBOX_CALLBACK_DELAY: float = Field(2.0, ge=0)
    # Seconds an interactive prompt on an open virtual phone waits before it times out (1037).
    SANDBOX_PROMPT_TIMEOUT: float = Field(60.0, gt=0)
    # Sandbox M-Pesa balance in KES: larger STK amounts fail with ResultCode 1.
    SANDBOX_BALANCE: int = Field(1000, ge=0)
    # Opening balance in KES of each simulated shortcode's account: C2B payments add to it, B2C
    # payouts take from it (a payout larger than what is left fails with ResultCode 1).
    SANDBOX_SHORTCODE_BALANCE: int = Field(1_000_000, ge=0)
    # Seconds the sandbox waits for a C2B ValidationURL to answer before its ResponseType applies (Daraja: ~8).
    SANDBOX_C2B_VALIDATION_TIMEOUT: float = Field(8.0, gt=0)
    # How many times the sandbox delivers each callback (fault switch: duplicates).
    SANDBOX_CALLBACK_COPIES: int = Field(1, ge=1, description="copies of every callback and webhook delivered")
    # Sandbox fault switches (tests and benchmarks; /sandbox/faults overrides them at run time for every
    # process). Each description is what GET /sandbox/faults shows.
    SANDBOX_FAULT_API_500: int = Field(0, ge=0, description="the next N simulator API calls answer HTTP 500")
    SANDBOX_FAULT_API_500_RATE: float = Field(0.0, ge=0, description="fraction of simulator API calls answering 500")
    SANDBOX_FAULT_API_500_BARE: bool = Field(
        False, description="those 500s carry a bare gateway page, not the provider's envelope"
    )
    SANDBOX_FAULT_API_TIMEOUT: int = Field(
        0, ge=0, description="the next N simulator API calls hang, then take effect (the client has timed out)"
    )
    SANDBOX_FAULT_API_TIMEOUT_RATE: float = Field(0.0, ge=0, description="fraction of simulator API calls that hang")
    SANDBOX_FAULT_API_HANG: float = Field(
        20.0, ge=0, description="seconds a hung API call waits; more than the client's timeout"
    )
    SANDBOX_FAULT_API_PATHS: str = Field(
        "", description="comma-separated path prefixes the API faults apply to; empty: every simulator API path"
    )
    SANDBOX_FAULT_CALLBACK_FAILS: int = Field(
        0,
        ge=0,
        description=(
            "each delivery's first N attempts are lost on the way, then it is retried with backoff"
            " until one gets through"
        ),
    )
    SANDBOX_FAULT_CALLBACK_RETRIES: int = Field(
        0,
        ge=0,
        description=(
            "retries for a delivery the receiver refuses (non-2xx) or cannot be reached,"
            " for providers that do not retry (Daraja)"
        ),
    )
    SANDBOX_FAULT_CALLBACK_BACKOFF: float = Field(
        1.0, ge=0, description="seconds before the first such retry; doubles each time"
    )
    SANDBOX_FAULT_REORDER: int = Field(
        0, ge=0, description="deliveries go in groups of N (2 or more), each group newest first"
    )
    SANDBOX_FAULT_REORDER_WAIT: float = Field(
        10.0, ge=0, description="seconds a held delivery waits for its group to fill"
    )
    # Daraja base URL; empty = the sandbox under PUBLIC_BASE_URL (or production when SANDBOX is off).
    DARAJA_BASE_URL: str = ""
    # Seconds to wait for Daraja (connect, read).
    DARAJA_TIMEOUT: float = Field(15.0, gt=0)
    # Comma-separated source IPs allowed to post Daraja callbacks; empty = any.
    DARAJA_CALLBACK_IPS: str = ""
    # Africa's Talking base URL; empty = the simulator under PUBLIC_BASE_URL in sandbox mode, else
    # AT's sandbox host for the username "sandbox" (as AT's SDKs choose) and its live host for any other.
    AT_BASE_URL: str = ""
    # The platform's own Africa's Talking account, which sends for merchants who set none of their own.
    AT_USERNAME: str = ""
    AT_API_KEY: str = ""
    # Sender ID (registered with AT) for messages of merchants who set none; empty = AT's default.
    AT_SENDER_ID: str = ""
    # Seconds to wait for Africa's Talking (connect, read).
    AT_TIMEOUT: float = Field(15.0, gt=0)
    # The API key the AT simulator takes (with the username "sandbox"); derived from SECRET_KEY when unset.
    SANDBOX_AT_API_KEY: str = ""
    # Numbers ending in this are opted out in the AT simulator (per-recipient 406 UserInBlacklist).
    SANDBOX_AT_BLACKLIST_SUFFIX: str = "0406"
    # Numbers ending in this are accepted by the AT simulator, then reported Failed (DeliveryFailure).
    SANDBOX_AT_FAILED_SUFFIX: str = "0408"
    # Where the AT simulator posts delivery reports (AT: the dashboard's Delivery Reports URL); empty = none.
    SANDBOX_AT_DELIVERY_REPORT_URL: str = ""
    # Paystack base URL; empty = the simulator under PUBLIC_BASE_URL in sandbox mode, else
    # https://api.paystack.co (one host for test and live: the key decides the mode).
    PAYSTACK_BASE_URL: str = ""
    # Seconds to wait for Paystack (connect, read).
    PAYSTACK_TIMEOUT: float = Field(15.0, gt=0)
    # Opening balance in KES of each integration in the Paystack simulator: successful charges add
    # to it (less fees), transfers and refunds take from it (a transfer larger than it is refused).
    SANDBOX_PAYSTACK_BALANCE: int = Field(1_000_000, ge=0)
    # HTTP status of the Paystack simulator's "Transaction reference not found" (the spec says 404,
    # live integrations report 400).
    SANDBOX_PAYSTACK_NOT_FOUND_STATUS: int = 400
    # Seconds between the Paystack simulator's webhook retries (test mode: hourly), how many retries
    # follow a refused first attempt (test mode: 10) and seconds each attempt may take (30).
    SANDBOX_PAYSTACK_WEBHOOK_RETRY_EVERY: float = Field(3600.0, ge=0)
    SANDBOX_PAYSTACK_WEBHOOK_RETRIES: int = Field(10, ge=0)
    SANDBOX_PAYSTACK_WEBHOOK_TIMEOUT: float = Field(30.0, gt=0)
    # Seconds a worker's claim on an SMS it is sending holds: past it the SMS counts as lost in a crash
    # and is sent again (at least once). Longer than AT_TIMEOUT, so a live sender is never overtaken.
    SMS_CLAIM_TIMEOUT: float = Field(120.0, gt=0)
    # Seconds an SMS may wait queued before the sweeper enqueues its send job again (a lost job).
    SMS_UNSENT_AFTER: float = Field(60.0, gt=0)
    # Rate limiting switch (tests turn it on only where limits are the subject).
    RATELIMIT_ENABLED: bool = True
    # Checkout API: requests per IP on every route.
    CHECKOUT_RATE_LIMIT: str = "100 per 15 minutes"
    # Checkout API: payment initiations per IP.
    CHECKOUT_INITIATE_RATE_LIMIT: str = "10 per minute"
    # Gateway API: requests per client address on every authenticated route.
    GATEWAY_RATE_LIMIT: str = "300 per minute"
    # Portal sign-in attempts per IP.
    LOGIN_RATE_LIMIT: str = "10 per minute"
    # Isp API: requests per client_id (per IP when the body names no well-formed one), both routes together.
    ISP_RATE_LIMIT: str = "100 per minute"
    # Water API: requests per IP on every route a kiosk or client calls (answers carry X-RateLimit-*).
    WATER_RATE_LIMIT: str = "100 per 15 minutes"
    # Seconds: a status check asks Daraja (STK query) about a payment at most once per this window,
    # however often clients poll; the polls in between are answered from the database.
    STATUS_QUERY_EVERY: float = Field(5.0, gt=0)
    # Seconds between two runs of the sweeper.
    SWEEP_INTERVAL: float = Field(30.0, gt=0)
    # Seconds after a B2C attempt was sent during which Transaction Status's "no such transaction"
    # is not taken as proof it never reached M-Pesa (a request we stopped waiting for may still
    # land): the question is asked again, and only then is another attempt sent.
    B2C_IN_DOUBT_SECONDS: float = Field(120.0, gt=0)
    # The same for a Paystack transfer: within this many seconds of sending it, Paystack's
    # "Transfer not found" is asked again; only then is it sent again (with the same reference).
    TRANSFER_IN_DOUBT_SECONDS: float = Field(120.0, gt=0)
    # Seconds after creation when the sweeper first asks Daraja about a payment it heard nothing of.
    SWEEP_QUERY_AFTER: float = Field(60.0, ge=0)
    # Seconds between two such questions about the same payment.
    SWEEP_QUERY_EVERY: float = Field(30.0, gt=0)
    # Seconds after creation when the sweeper gives up on a silent payment (timeout).
    SWEEP_TIMEOUT_AFTER: float = Field(1800.0, gt=0)
    # Seconds after creation when a payment still `pending` (never pushed) is settled by the sweeper.
    SWEEP_PENDING_AFTER: float = Field(120.0, gt=0)
    # Retries of a failed job before it becomes a dead letter (0: none; a failure is final at once).
    JOB_RETRIES: int = Field(5, ge=0)
    # Seconds before a failed job's first retry; each further retry waits twice as long, every
    # wait varied by up to a fifth either way (jitter), so jobs that failed together retry apart.
    JOB_RETRY_BASE: float = Field(2.0, ge=0)
    # Seconds an Idempotency-Key's answer is kept (the documented window: 24 hours).
    IDEMPOTENCY_TTL: int = Field(86400, gt=0)
    # Live events (GET /api/events): seconds between two heartbeat comments on an open stream, so
    # proxies keep it open and a client that went away is noticed (the write fails).
    EVENTS_HEARTBEAT: float = Field(15.0, gt=0)
    # Seconds a stream lives before it ends with a retry hint: its thread comes back, the client
    # reconnects with its Last-Event-ID. Each stream's own is up to a tenth shorter, so streams
    # opened together do not all reconnect together.
    EVENTS_STREAM_LIFETIME: float = Field(300.0, gt=0)
    # Open streams per web process; more are answered 503 with Retry-After. Each holds a thread
    # (40 per Procfile worker): well below that, so streams never starve ordinary requests.
    EVENTS_MAX_STREAMS: int = Field(16, ge=0)
    # Seconds a client waits before reconnecting: the streams' `retry:` hint and the 503's Retry-After.
    EVENTS_RETRY: int = Field(3, ge=1)
    # Water OTPs: minutes a code stays usable once issued, and wrong codes before it is blocked.
    OTP_EXPIRY_MINUTES: int = Field(10, ge=1)
    OTP_MAX_ATTEMPTS: int = Field(3, ge=1)
    # Key of the HMAC under which OTP codes are stored; derived from SECRET_KEY when unset.
    OTP_HMAC_KEY: str = ""
    # Seconds a station may dispense (OTP in_progress) before the sweeper takes it as finished.
    OTP_DISPENSE_TIMEOUT: float = Field(1800.0, gt=0)
    # The kiosk page (/kiosk/<station>): liters a second its simulated flow meter counts while
    # dispensing (the sandbox has no meter; a real kiosk's meter replaces it).
    KIOSK_FLOW_LITERS_PER_SECOND: float = Field(0.2, gt=0, le=100)
    # Seconds a kiosk's closing screen (thank you, payment failed, code refused) stays before idle.
    KIOSK_IDLE_RETURN_SECONDS: float = Field(10.0, gt=0)
    # Seconds a kiosk screen waiting for the customer's touch may sit untouched before it goes back to idle
    # (the code screen of a customer who has paid waits instead as long as the code lasts).
    KIOSK_ABANDON_SECONDS: float = Field(90.0, gt=0)
    # Largest request body in bytes; bigger ones are refused with 413 before they are read.
    MAX_CONTENT_LENGTH: int = Field(65536, gt=0)
    # werkzeug method for portal passwords (tests use a cheap one).
    PASSWORD_HASH_METHOD: str = "scrypt"
    # Number of reverse proxies in front of the app whose X-Forwarded-For is trusted.
    TRUSTED_PROXIES: int = Field(0, ge=0)
    # Log level for the app and the worker.
    LOG_LEVEL: Literal["DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"] = "INFO"

    @model_validator(mode="after")
    def _derive(self) -> "Config":
        """Every derived value and every refusal, in one place."""
        production = self.ENV == "production"
        if production:
            missing = [name for name in ("SECRET_KEY", "ENCRYPTION_KEY", "REDIS_URL") if not getattr(self, name)]
            if self.SECRET_KEY == DEV_SECRET_KEY:
                missing.insert(0, "SECRET_KEY (not the development default)")
            if missing:
                raise ValueError(f"production needs these settings: {', '.join(missing)}")
        if self.SMS_CLAIM_TIMEOUT <= self.AT_TIMEOUT:
            raise ValueError("SMS_CLAIM_TIMEOUT must be longer than AT_TIMEOUT, or a slow send could be sent twice")
        if self.SANDBOX_PAYSTACK_NOT_FOUND_STATUS not in (400, 404):
            raise ValueError("SANDBOX_PAYSTACK_NOT_FOUND_STATUS must be 400 or 404")
        if self.SANDBOX is None:
            self.SANDBOX = not production
        if not self.ENCRYPTION_KEY:
            self.ENCRYPTION_KEY = derive_fernet_key(self.SECRET_KEY)
        if not self.OTP_HMAC_KEY:
            self.OTP_HMAC_KEY = hashlib.sha256(b"portal-otp:" + self.SECRET_KEY.encode()).hexdigest()
        url = self.SQLALCHEMY_DATABASE_URI or "sqlite:///" + os.path.join(INSTANCE_PATH, "portal.db")
        if url.startswith("postgres://"):  # Heroku-style scheme SQLAlchemy no longer accepts
            url = "postgresql://" + url.removeprefix("postgres://")
        self.SQLALCHEMY_DATABASE_URI = url
        self.PUBLIC_BASE_URL = self.PUBLIC_BASE_URL.rstrip("/")
        self.DARAJA_BASE_URL = self.DARAJA_BASE_URL.rstrip("/")
        self.AT_BASE_URL = self.AT_BASE_URL.rstrip("/")
        self.PAYSTACK_BASE_URL = self.PAYSTACK_BASE_URL.rstrip("/")
        if not self.SANDBOX_AT_API_KEY:
            self.SANDBOX_AT_API_KEY = derive_secret(self.SECRET_KEY, "sandbox-at-api-key")
        return self

    def engine_options(self) -> dict:
        if self.SQLALCHEMY_DATABASE_URI.startswith("sqlite"):
            # Live-server threads and the in-process worker share the file.
            return {"connect_args": {"timeout": 30, "check_same_thread": False}}
        # No pool_pre_ping: it costs a round trip on every checkout, i.e. on every request of the
        # hot callback path. Recycling replaces connections before the server or a proxy drops them
        # idle; one dropped anyway (a database restart) fails one request, and SQLAlchemy then
        # invalidates the pool so the next request reconnects.
        return {
            "pool_size": self.DB_POOL_SIZE,
            "max_overflow": self.DB_MAX_OVERFLOW,
            "pool_recycle": self.DB_POOL_RECYCLE,
        }

    def flask_config(self) -> dict:
        """The settings as Flask config keys, with the framework keys they imply."""
        return {
            **self.model_dump(),
            "SQLALCHEMY_ENGINE_OPTIONS": self.engine_options(),
            "SQLALCHEMY_TRACK_MODIFICATIONS": False,
            "SESSION_COOKIE_HTTPONLY": True,
            "SESSION_COOKIE_SAMESITE": "Lax",
            "SESSION_COOKIE_SECURE": self.ENV == "production",
            "REMEMBER_COOKIE_HTTPONLY": True,
            "WTF_CSRF_TIME_LIMIT": None,
            "RATELIMIT_STORAGE_URI": self.REDIS_URL or "memory://",
            # X-RateLimit-* headers cost two more Redis round trips per limited request (a sixth
            # of an initiation's CPU with the counts themselves); only the water document has
            # them, and its routes set them themselves (api/water.py).
            "RATELIMIT_HEADERS_ENABLED": False,
        }


def load(overrides: dict[str, Any] | None = None, env_file: str | None = ENV_FILE) -> dict:
    """Reads the settings (overrides win over the environment, which wins over `.env`) and returns
    the Flask config. Keys of `overrides` that are not settings are passed through unchanged.
    Raises ConfigError naming each bad variable."""
    overrides = dict(overrides or {})
    given = {key: overrides.pop(key) for key in list(overrides) if key in Config.model_fields}
    try:
        config = Config(_env_file=env_file, **given)
    except ValidationError as exc:
        raise ConfigError(_describe(exc)) from None
    return {**config.flask_config(), **overrides}


def _describe(exc: ValidationError) -> str:
    lines = []
    for error in exc.errors():
        name = ".".join(str(part) for part in error["loc"])
        message = error["msg"].removeprefix("Value error, ")
        if name:
            lines.append(f"{name}={error['input']!r}: {message}")
        else:
            lines.append(message)
    return "invalid configuration:\n  " + "\n  ".join(lines)
