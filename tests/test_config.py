"""Settings: every one read from the environment, `.env` honoured, production's refusals, clear
errors; and the production access log that leaves callback tokens out."""

import datetime
import logging
import os
import subprocess
import sys
from types import SimpleNamespace

import pytest
from gunicorn.app.base import Application
from gunicorn.glogging import Logger

from portal.config import DEV_SECRET_KEY, INSTANCE_PATH, Config, ConfigError, derive_fernet_key, load

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

# Every setting: the variable it is read from, a value in the environment, the Flask config value
# that follows. A setting added to Config without a row here fails the first test.
FROM_ENV = {
    "ENV": ("APP_ENV", "production", "production"),
    "SECRET_KEY": ("SECRET_KEY", "s" * 40, "s" * 40),
    "ENCRYPTION_KEY": ("ENCRYPTION_KEY", "fernet-key", "fernet-key"),
    "SQLALCHEMY_DATABASE_URI": ("DATABASE_URL", "postgres://u@db/portal", "postgresql://u@db/portal"),
    "DB_POOL_SIZE": ("DB_POOL_SIZE", "17", 17),
    "DB_MAX_OVERFLOW": ("DB_MAX_OVERFLOW", "3", 3),
    "DB_POOL_RECYCLE": ("DB_POOL_RECYCLE", "600", 600),
    "REDIS_URL": ("REDIS_URL", "redis://cache:6379/2", "redis://cache:6379/2"),
    "PUBLIC_BASE_URL": ("PUBLIC_BASE_URL", "https://pay.example.com/", "https://pay.example.com"),
    "SANDBOX": ("SANDBOX", "no", False),
    "SANDBOX_CALLBACK_DELAY": ("SANDBOX_CALLBACK_DELAY", "0.25", 0.25),
    "SANDBOX_PROMPT_TIMEOUT": ("SANDBOX_PROMPT_TIMEOUT", "9", 9.0),
    "SANDBOX_BALANCE": ("SANDBOX_BALANCE", "50", 50),
    "SANDBOX_SHORTCODE_BALANCE": ("SANDBOX_SHORTCODE_BALANCE", "2500", 2500),
    "SANDBOX_C2B_VALIDATION_TIMEOUT": ("SANDBOX_C2B_VALIDATION_TIMEOUT", "1.5", 1.5),
    "SANDBOX_CALLBACK_COPIES": ("SANDBOX_CALLBACK_COPIES", "3", 3),
    "SANDBOX_FAULT_API_500": ("SANDBOX_FAULT_API_500", "2", 2),
    "SANDBOX_FAULT_API_500_RATE": ("SANDBOX_FAULT_API_500_RATE", "0.5", 0.5),
    "SANDBOX_FAULT_API_500_BARE": ("SANDBOX_FAULT_API_500_BARE", "true", True),
    "SANDBOX_FAULT_API_TIMEOUT": ("SANDBOX_FAULT_API_TIMEOUT", "3", 3),
    "SANDBOX_FAULT_API_TIMEOUT_RATE": ("SANDBOX_FAULT_API_TIMEOUT_RATE", "0.25", 0.25),
    "SANDBOX_FAULT_API_HANG": ("SANDBOX_FAULT_API_HANG", "1.5", 1.5),
    "SANDBOX_FAULT_API_PATHS": ("SANDBOX_FAULT_API_PATHS", "/sandbox/daraja/oauth", "/sandbox/daraja/oauth"),
    "SANDBOX_FAULT_CALLBACK_FAILS": ("SANDBOX_FAULT_CALLBACK_FAILS", "2", 2),
    "SANDBOX_FAULT_CALLBACK_RETRIES": ("SANDBOX_FAULT_CALLBACK_RETRIES", "4", 4),
    "SANDBOX_FAULT_CALLBACK_BACKOFF": ("SANDBOX_FAULT_CALLBACK_BACKOFF", "0.5", 0.5),
    "SANDBOX_FAULT_REORDER": ("SANDBOX_FAULT_REORDER", "2", 2),
    "SANDBOX_FAULT_REORDER_WAIT": ("SANDBOX_FAULT_REORDER_WAIT", "5", 5.0),
    "DARAJA_BASE_URL": ("DARAJA_BASE_URL", "https://api.safaricom.co.ke/", "https://api.safaricom.co.ke"),
    "DARAJA_TIMEOUT": ("DARAJA_TIMEOUT", "4.5", 4.5),
    "DARAJA_CALLBACK_IPS": ("DARAJA_CALLBACK_IPS", "196.201.214.200", "196.201.214.200"),
    "AT_BASE_URL": ("AT_BASE_URL", "https://api.africastalking.com/", "https://api.africastalking.com"),
    "AT_USERNAME": ("AT_USERNAME", "shop", "shop"),
    "AT_API_KEY": ("AT_API_KEY", "atsk_live_key", "atsk_live_key"),
    "AT_SENDER_ID": ("AT_SENDER_ID", "DEMO-SHOP", "DEMO-SHOP"),
    "AT_TIMEOUT": ("AT_TIMEOUT", "4.5", 4.5),
    "SANDBOX_AT_API_KEY": ("SANDBOX_AT_API_KEY", "atsk_sandbox_key", "atsk_sandbox_key"),
    "SANDBOX_AT_BLACKLIST_SUFFIX": ("SANDBOX_AT_BLACKLIST_SUFFIX", "1406", "1406"),
    "SANDBOX_AT_FAILED_SUFFIX": ("SANDBOX_AT_FAILED_SUFFIX", "1408", "1408"),
    "SANDBOX_AT_DELIVERY_REPORT_URL": (
        "SANDBOX_AT_DELIVERY_REPORT_URL",
        "https://pay.example.com/api/sms/delivery-reports",
        "https://pay.example.com/api/sms/delivery-reports",
    ),
    "PAYSTACK_BASE_URL": ("PAYSTACK_BASE_URL", "https://api.paystack.co/", "https://api.paystack.co"),
    "PAYSTACK_TIMEOUT": ("PAYSTACK_TIMEOUT", "4.5", 4.5),
    "SANDBOX_PAYSTACK_BALANCE": ("SANDBOX_PAYSTACK_BALANCE", "2500", 2500),
    "SANDBOX_PAYSTACK_NOT_FOUND_STATUS": ("SANDBOX_PAYSTACK_NOT_FOUND_STATUS", "404", 404),
    "SANDBOX_PAYSTACK_WEBHOOK_RETRY_EVERY": ("SANDBOX_PAYSTACK_WEBHOOK_RETRY_EVERY", "180", 180.0),
    "SANDBOX_PAYSTACK_WEBHOOK_RETRIES": ("SANDBOX_PAYSTACK_WEBHOOK_RETRIES", "4", 4),
    "SANDBOX_PAYSTACK_WEBHOOK_TIMEOUT": ("SANDBOX_PAYSTACK_WEBHOOK_TIMEOUT", "5", 5.0),
    "SMS_CLAIM_TIMEOUT": ("SMS_CLAIM_TIMEOUT", "300", 300.0),
    "SMS_UNSENT_AFTER": ("SMS_UNSENT_AFTER", "30", 30.0),
    "RATELIMIT_ENABLED": ("RATELIMIT_ENABLED", "false", False),
    "CHECKOUT_RATE_LIMIT": ("CHECKOUT_RATE_LIMIT", "5 per minute", "5 per minute"),
    "CHECKOUT_INITIATE_RATE_LIMIT": ("CHECKOUT_INITIATE_RATE_LIMIT", "2 per minute", "2 per minute"),
    "GATEWAY_RATE_LIMIT": ("GATEWAY_RATE_LIMIT", "7 per minute", "7 per minute"),
    "LOGIN_RATE_LIMIT": ("LOGIN_RATE_LIMIT", "3 per minute", "3 per minute"),
    "ISP_RATE_LIMIT": ("ISP_RATE_LIMIT", "7 per minute", "7 per minute"),
    "WATER_RATE_LIMIT": ("WATER_RATE_LIMIT", "9 per 15 minutes", "9 per 15 minutes"),
    "STATUS_QUERY_EVERY": ("STATUS_QUERY_EVERY", "12", 12.0),
    "JOB_RETRIES": ("JOB_RETRIES", "3", 3),
    "JOB_RETRY_BASE": ("JOB_RETRY_BASE", "0.5", 0.5),
    "SWEEP_INTERVAL": ("SWEEP_INTERVAL", "7", 7.0),
    "SWEEP_QUERY_AFTER": ("SWEEP_QUERY_AFTER", "8", 8.0),
    "B2C_IN_DOUBT_SECONDS": ("B2C_IN_DOUBT_SECONDS", "13", 13.0),
    "TRANSFER_IN_DOUBT_SECONDS": ("TRANSFER_IN_DOUBT_SECONDS", "17", 17.0),
    "SWEEP_QUERY_EVERY": ("SWEEP_QUERY_EVERY", "9", 9.0),
    "SWEEP_TIMEOUT_AFTER": ("SWEEP_TIMEOUT_AFTER", "10", 10.0),
    "SWEEP_PENDING_AFTER": ("SWEEP_PENDING_AFTER", "11", 11.0),
    "IDEMPOTENCY_TTL": ("IDEMPOTENCY_TTL", "172800", 172800),
    "OTP_EXPIRY_MINUTES": ("OTP_EXPIRY_MINUTES", "15", 15),
    "OTP_MAX_ATTEMPTS": ("OTP_MAX_ATTEMPTS", "5", 5),
    "OTP_HMAC_KEY": ("OTP_HMAC_KEY", "an-otp-key", "an-otp-key"),
    "OTP_DISPENSE_TIMEOUT": ("OTP_DISPENSE_TIMEOUT", "600", 600.0),
    "EVENTS_HEARTBEAT": ("EVENTS_HEARTBEAT", "2.5", 2.5),
    "EVENTS_STREAM_LIFETIME": ("EVENTS_STREAM_LIFETIME", "60", 60.0),
    "EVENTS_MAX_STREAMS": ("EVENTS_MAX_STREAMS", "4", 4),
    "EVENTS_RETRY": ("EVENTS_RETRY", "10", 10),
    "KIOSK_FLOW_LITERS_PER_SECOND": ("KIOSK_FLOW_LITERS_PER_SECOND", "2.5", 2.5),
    "KIOSK_IDLE_RETURN_SECONDS": ("KIOSK_IDLE_RETURN_SECONDS", "4", 4.0),
    "KIOSK_ABANDON_SECONDS": ("KIOSK_ABANDON_SECONDS", "30", 30.0),
    "MAX_CONTENT_LENGTH": ("MAX_CONTENT_LENGTH", "1024", 1024),
    "PASSWORD_HASH_METHOD": ("PASSWORD_HASH_METHOD", "pbkdf2:sha256:1000", "pbkdf2:sha256:1000"),
    "TRUSTED_PROXIES": ("TRUSTED_PROXIES", "2", 2),
    "LOG_LEVEL": ("LOG_LEVEL", "DEBUG", "DEBUG"),
}
ENV_NAMES = [name for name, _value, _expected in FROM_ENV.values()]


@pytest.fixture
def environ(monkeypatch):
    """An environment holding none of the settings, whatever the shell running the tests holds."""
    for name in ENV_NAMES:
        monkeypatch.delenv(name, raising=False)
    return monkeypatch


def test_every_setting_has_a_row_in_the_table():
    assert set(FROM_ENV) == set(Config.model_fields)


@pytest.mark.parametrize("key", sorted(FROM_ENV))
def test_every_setting_is_read_from_the_environment(environ, key):
    name, value, expected = FROM_ENV[key]
    if key == "ENV":  # production refuses to start without these
        environ.setenv("SECRET_KEY", "s" * 40)
        environ.setenv("REDIS_URL", "redis://cache:6379/2")
        environ.setenv("ENCRYPTION_KEY", "fernet-key")
    default = load(env_file=None)[key] if key != "ENV" else "development"
    assert default != expected, "the sample must differ from the default, or the test proves nothing"
    environ.setenv(name, value)
    assert load(env_file=None)[key] == expected


def test_embedded_defaults(environ):
    config = load(env_file=None)
    assert config["ENV"] == "development" and config["SANDBOX"] is True
    assert config["SQLALCHEMY_DATABASE_URI"] == "sqlite:///" + os.path.join(INSTANCE_PATH, "portal.db")
    assert config["REDIS_URL"] == "" and config["RATELIMIT_STORAGE_URI"] == "memory://"
    assert config["SECRET_KEY"] == DEV_SECRET_KEY
    assert config["ENCRYPTION_KEY"] == derive_fernet_key(DEV_SECRET_KEY)
    assert (config["MAX_CONTENT_LENGTH"], config["IDEMPOTENCY_TTL"], config["SWEEP_PENDING_AFTER"]) == (
        65536,
        86400,
        120,
    )
    assert config["PASSWORD_HASH_METHOD"] == "scrypt"


def test_the_sms_claim_must_outlast_a_call_to_africas_talking(environ):
    """A claim shorter than the call would let the sweeper send an SMS its worker is still sending."""
    environ.setenv("AT_TIMEOUT", "30")
    environ.setenv("SMS_CLAIM_TIMEOUT", "20")
    with pytest.raises(ConfigError, match="SMS_CLAIM_TIMEOUT must be longer than AT_TIMEOUT"):
        load(env_file=None)


def test_paystacks_not_found_status_is_one_of_the_two_it_is_seen_with(environ):
    environ.setenv("SANDBOX_PAYSTACK_NOT_FOUND_STATUS", "418")
    with pytest.raises(ConfigError, match="SANDBOX_PAYSTACK_NOT_FOUND_STATUS must be 400 or 404"):
        load(env_file=None)


def test_the_simulators_sms_key_is_derived_from_the_secret_key_when_unset(environ):
    environ.setenv("SECRET_KEY", "s" * 40)
    first = load(env_file=None)["SANDBOX_AT_API_KEY"]
    assert len(first) == 64 and first == load(env_file=None)["SANDBOX_AT_API_KEY"]
    environ.setenv("SECRET_KEY", "t" * 40)
    assert load(env_file=None)["SANDBOX_AT_API_KEY"] != first


def test_postgres_pool_is_sized_by_settings_and_never_pre_pings(environ):
    environ.setenv("DATABASE_URL", "postgresql://u@db/portal")
    environ.setenv("DB_POOL_SIZE", "24")
    options = load(env_file=None)["SQLALCHEMY_ENGINE_OPTIONS"]
    assert options["pool_size"] == 24 and options["max_overflow"] == 0 and options["pool_recycle"] == 1800
    assert "pool_pre_ping" not in options


@pytest.mark.parametrize("missing", ["SECRET_KEY", "ENCRYPTION_KEY", "REDIS_URL"])
def test_production_refuses_to_start_without_a_secret(environ, missing):
    environ.setenv("APP_ENV", "production")
    for name in {"SECRET_KEY", "ENCRYPTION_KEY", "REDIS_URL"} - {missing}:
        environ.setenv(name, "redis://cache:6379/0" if name == "REDIS_URL" else "x" * 40)
    with pytest.raises(ConfigError, match=f"production needs these settings: {missing}"):
        load(env_file=None)


def test_production_refuses_the_development_secret_key(environ):
    for name, value in {
        "APP_ENV": "production",
        "SECRET_KEY": DEV_SECRET_KEY,
        "ENCRYPTION_KEY": "k" * 40,
        "REDIS_URL": "redis://cache:6379/0",
    }.items():
        environ.setenv(name, value)
    with pytest.raises(ConfigError, match=r"SECRET_KEY \(not the development default\)"):
        load(env_file=None)
    environ.setenv("SECRET_KEY", "s" * 40)
    config = load(env_file=None)
    assert config["SANDBOX"] is False and config["SESSION_COOKIE_SECURE"] is True


def test_a_bad_value_stops_the_app_with_an_error_naming_the_variable(environ):
    env = dict(os.environ, SWEEP_INTERVAL="abc", PYTHONPATH=ROOT)
    result = subprocess.run(
        [sys.executable, "-c", "import wsgi"], cwd=ROOT, env=env, capture_output=True, text=True, timeout=120
    )
    assert result.returncode != 0
    assert "portal.config.ConfigError: invalid configuration:" in result.stderr
    assert "SWEEP_INTERVAL='abc': Input should be a valid number" in result.stderr


def test_dotenv_is_honoured_and_the_environment_and_overrides_win(environ, tmp_path):
    dotenv = tmp_path / ".env"
    dotenv.write_text("SANDBOX_BALANCE=777\nDATABASE_URL=postgres://u@db/portal\nLOG_LEVEL=ERROR\nFLASK_APP=wsgi\n")
    config = load(env_file=str(dotenv))
    assert config["SANDBOX_BALANCE"] == 777 and config["SQLALCHEMY_DATABASE_URI"] == "postgresql://u@db/portal"
    environ.setenv("SANDBOX_BALANCE", "5")
    assert load(env_file=str(dotenv))["SANDBOX_BALANCE"] == 5
    config = load({"SANDBOX_BALANCE": 9, "SQLALCHEMY_DATABASE_URI": "sqlite://", "TESTING": True}, env_file=str(dotenv))
    assert config["SANDBOX_BALANCE"] == 9 and config["SQLALCHEMY_DATABASE_URI"] == "sqlite://"
    assert config["SQLALCHEMY_ENGINE_OPTIONS"]["connect_args"]["check_same_thread"] is False
    assert config["TESTING"] is True and config["LOG_LEVEL"] == "ERROR"


class _Gunicorn(Application):
    """gunicorn's own configuration, loaded from the file the Procfile names."""

    def load_config(self):
        self.load_config_from_file(os.path.join(ROOT, "gunicorn.conf.py"))

    def load(self):
        raise AssertionError("not served")


def _access_line(cfg, path, query):
    lines = []
    handler = logging.Handler()
    handler.emit = lambda record: lines.append(record.getMessage())
    logger = Logger(cfg)
    logger.access_log.addHandler(handler)
    environ = {
        "REQUEST_METHOD": "POST",
        "RAW_URI": f"{path}?{query}",
        "PATH_INFO": path,
        "QUERY_STRING": query,
        "SERVER_PROTOCOL": "HTTP/1.1",
        "REMOTE_ADDR": "196.201.214.200",
        "HTTP_USER_AGENT": "Daraja",
        "HTTP_REFERER": f"https://example.com{path}?{query}",
    }
    response = SimpleNamespace(status="200 OK", sent=27, headers=[])
    logger.access(response, SimpleNamespace(headers=[]), environ, datetime.timedelta(milliseconds=3))
    return lines


def test_the_production_access_log_leaves_callback_tokens_out():
    cfg = _Gunicorn().cfg
    assert "gunicorn.conf.py" in " ".join(open(os.path.join(ROOT, "Procfile")).read().split())
    assert cfg.accesslog == "-"
    [line] = _access_line(cfg, "/callback/daraja/stk/42", "token=secret-callback-token")
    assert '"POST /callback/daraja/stk/42 HTTP/1.1" 200 27' in line
    assert "secret" not in line and "token" not in line
    cfg.set("access_log_format", '%(r)s "%(f)s"')  # gunicorn's default would log it: the check above can fail
    assert "secret-callback-token" in _access_line(cfg, "/callback/daraja/stk/42", "token=secret-callback-token")[0]
