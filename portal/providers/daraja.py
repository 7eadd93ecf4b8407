"""Safaricom Daraja client: OAuth (token cached in Redis, one fetch per expiry window for
every process), STK push and STK query. Errors are typed and carry Daraja's codes."""

import base64
import hashlib
from dataclasses import dataclass

import redis
import urllib3

from portal.providers.http import pool_for
from portal.timeutil import daraja_timestamp

TOKEN_MARGIN = 300  # refresh this many seconds before Daraja says the token expires
PENDING_MESSAGE = "The transaction is being processed"
SUBSCRIBER_LOCKED = "Unable to lock subscriber"


class DarajaError(Exception):
    """Daraja answered with its error envelope (or something we cannot read)."""

    def __init__(self, status: int, error_code: str, error_message: str, request_id: str | None = None):
        super().__init__(f"{error_code}: {error_message}")
        self.status = status
        self.error_code = error_code
        self.error_message = error_message
        self.request_id = request_id

    @property
    def subscriber_locked(self) -> bool:
        return SUBSCRIBER_LOCKED in self.error_message

    @property
    def retryable(self) -> bool:
        """Spike arrest, quota and busy answers mean the request was not processed."""
        return self.error_code in {"500.003.02", "500.003.03"}


class DarajaUnavailable(Exception):
    """The request may not have reached Daraja (connection failed) or its fate is unknown
    (read timeout): `maybe_sent` says which."""

    def __init__(self, message: str, maybe_sent: bool):
        super().__init__(message)
        self.maybe_sent = maybe_sent


@dataclass(frozen=True)
class StkAck:
    merchant_request_id: str
    checkout_request_id: str
    response_code: str
    customer_message: str


@dataclass(frozen=True)
class StkQueryResult:
    pending: bool
    result_code: str | None = None
    result_desc: str | None = None


def stk_password(shortcode: str, passkey: str, timestamp: str) -> str:
    return base64.b64encode(f"{shortcode}{passkey}{timestamp}".encode()).decode()


class DarajaClient:
    def __init__(
        self,
        base_url: str,
        consumer_key: str,
        consumer_secret: str,
        shortcode: str,
        passkey: str,
        cache: redis.Redis,
        timeout: float = 15.0,
        transaction_type: str = "CustomerPayBillOnline",
        party_b: str | None = None,
        http: urllib3.PoolManager | None = None,
    ):
        self.base_url = base_url.rstrip("/")
        self.consumer_key = consumer_key
        self.consumer_secret = consumer_secret
        self.shortcode = shortcode
        self.passkey = passkey
        self.cache = cache
        self.timeout = urllib3.Timeout(connect=min(5.0, timeout), read=timeout)
        self.transaction_type = transaction_type
        self.party_b = party_b or shortcode
        self.http = http or pool_for(self.base_url)
        fingerprint = hashlib.sha256(f"{self.base_url}|{consumer_key}|{consumer_secret}".encode()).hexdigest()
        self._token_key = f"daraja:token:{fingerprint}"

    # -- OAuth -------------------------------------------------------------------------
    def access_token(self) -> str:
        """The cached token, fetched once per expiry window across processes (a Redis lock
        lets one process fetch while the others wait for its answer)."""
        try:
            cached = self.cache.get(self._token_key)
            if cached:
                return cached.decode()
            lock = self.cache.lock(self._token_key + ":lock", timeout=30, blocking_timeout=35)
            with lock:
                cached = self.cache.get(self._token_key)
                if cached:
                    return cached.decode()
                token, expires_in = self._fetch_token()
                self.cache.set(self._token_key, token, ex=max(60, expires_in - TOKEN_MARGIN))
                return token
        except redis.RedisError as exc:  # the token cache is ours: nothing has been sent to Daraja yet
            raise DarajaUnavailable(f"the Daraja token cache is unavailable: {exc}", maybe_sent=False) from exc

    def forget_token(self) -> None:
        self.cache.delete(self._token_key)

    def _fetch_token(self) -> tuple[str, int]:
        body = self._call(
            "GET",
            "/oauth/v1/generate",
            fields={"grant_type": "client_credentials"},
            headers=urllib3.make_headers(basic_auth=f"{self.consumer_key}:{self.consumer_secret}"),
        )
        try:
            return body["access_token"], int(body["expires_in"])  # expires_in is a string on the wire
        except (KeyError, TypeError, ValueError):
            raise DarajaError(200, "unexpected", f"unreadable OAuth answer: {body!r}") from None

    # -- M-Pesa Express ----------------------------------------------------------------
    def stk_push(self, phone: str, amount: int, callback_url: str, account_reference: str, description: str) -> StkAck:
        """`amount` is in whole shillings. Raises DarajaError or DarajaUnavailable."""
        timestamp = daraja_timestamp()
        body = self._authed_post(
            "/mpesa/stkpush/v1/processrequest",
            {
                "BusinessShortCode": self.shortcode,
                "Password": stk_password(self.shortcode, self.passkey, timestamp),
                "Timestamp": timestamp,
                "TransactionType": self.transaction_type,
                "Amount": amount,
                "PartyA": phone,
                "PartyB": self.party_b,
                "PhoneNumber": phone,
                "CallBackURL": callback_url,
                "AccountReference": account_reference[:12],
                "TransactionDesc": (description or "Payment")[:13],
            },
        )
        try:
            return StkAck(
                body["MerchantRequestID"],
                body["CheckoutRequestID"],
                str(body.get("ResponseCode", "0")),
                body.get("CustomerMessage", ""),
            )
        except (KeyError, TypeError):
            raise DarajaError(200, "unexpected", f"unreadable STK answer: {body!r}") from None

    def stk_query(self, checkout_request_id: str) -> StkQueryResult:
        timestamp = daraja_timestamp()
        try:
            body = self._authed_post(
                "/mpesa/stkpushquery/v1/query",
                {
                    "BusinessShortCode": self.shortcode,
                    "Password": stk_password(self.shortcode, self.passkey, timestamp),
                    "Timestamp": timestamp,
                    "CheckoutRequestID": checkout_request_id,
                },
            )
        except DarajaError as exc:
            if PENDING_MESSAGE in exc.error_message:  # an "error" that means: not answered yet
                return StkQueryResult(pending=True)
            raise
        return StkQueryResult(False, str(body.get("ResultCode")), body.get("ResultDesc"))

    # -- plumbing ----------------------------------------------------------------------
    def _authed_post(self, path: str, payload: dict) -> dict:
        for attempt in (1, 2):
            token = self.access_token()
            try:
                return self._call("POST", path, json=payload, headers={"Authorization": f"Bearer {token}"})
            except DarajaError as exc:
                if attempt == 1 and exc.error_code in {"404.001.03", "401.002.01"}:
                    self.forget_token()  # expired or revoked early: fetch a new one, once
                    continue
                raise
        raise AssertionError("unreachable")

    def _call(self, method: str, path: str, **kwargs) -> dict:
        url = self.base_url + path
        try:
            response = self.http.request(method, url, timeout=self.timeout, retries=False, **kwargs)
        except (urllib3.exceptions.ConnectTimeoutError, urllib3.exceptions.NewConnectionError) as exc:
            # Refused, unresolvable or never connected: nothing was sent.
            raise DarajaUnavailable(f"could not connect to Daraja: {exc}", maybe_sent=False) from exc
        except urllib3.exceptions.ReadTimeoutError as exc:
            raise DarajaUnavailable(f"Daraja did not answer in time: {exc}", maybe_sent=True) from exc
        except urllib3.exceptions.HTTPError as exc:  # reset or cut off mid-answer: it may have been sent
            raise DarajaUnavailable(f"Daraja connection failed: {exc}", maybe_sent=True) from exc
        try:
            body = response.json()
        except ValueError:
            body = None
        status = response.status
        if status == 200 and isinstance(body, dict) and "errorCode" not in body:
            return body
        if isinstance(body, dict) and "errorCode" in body:
            raise DarajaError(status, str(body["errorCode"]), str(body.get("errorMessage", "")), body.get("requestId"))
        if status >= 500:  # a gateway error without Daraja's envelope: fate unknown
            raise DarajaUnavailable(f"Daraja answered HTTP {status}", maybe_sent=True)
        text = response.data.decode("utf-8", "replace")
        raise DarajaError(status, f"http.{status}", text[:300] or "empty answer", None)
