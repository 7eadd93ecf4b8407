"""Safaricom Daraja client: OAuth (token cached in Redis, one fetch per expiry window for
every process), STK push and query, C2B URL registration and simulation, B2C payments and
Transaction Status. Errors are typed and carry Daraja's codes; the asynchronous results of B2C
and Transaction Status are read by portal.providers.daraja_results."""

import base64
import hashlib
from dataclasses import dataclass

import redis
import urllib3

from portal.providers.daraja_results import security_credential
from portal.providers.http import pool_for
from portal.timeutil import daraja_timestamp

TOKEN_MARGIN = 300  # refresh this many seconds before Daraja says the token expires
# Daraja's answers to a token it no longer accepts: STK family, B2C family, C2B and Status (reference §1.2).
STALE_TOKEN = {"404.001.03", "401.002.01", "400.003.01"}
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


@dataclass(frozen=True)
class C2BAck:
    """C2B URL registration or simulation accepted (Daraja's key is OriginatorCoversationID)."""

    originator_conversation_id: str
    response_code: str
    response_description: str


@dataclass(frozen=True)
class AsyncAck:
    """A B2C payment or Transaction Status query accepted: its Result comes to the ResultURL."""

    conversation_id: str
    originator_conversation_id: str
    response_code: str
    response_description: str


class NoInitiator(ValueError):
    """B2C and Transaction Status need the initiator's name, password and Safaricom's certificate."""


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
        initiator_name: str | None = None,
        initiator_password: str | None = None,
        certificate_pem: str | None = None,
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
        self.initiator_name = initiator_name
        self.initiator_password = initiator_password
        self.certificate_pem = certificate_pem
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

    # -- C2B -----------------------------------------------------------------------------
    def register_c2b_urls(
        self,
        confirmation_url: str,
        validation_url: str,
        response_type: str = "Completed",
        shortcode: str | None = None,
        version: str = "v2",
    ) -> C2BAck:
        """`response_type` (Completed or Cancelled) is what happens to a payment when the
        validation URL cannot be reached. Daraja refuses URLs with words like "mpesa" in them."""
        body = self._authed_post(
            f"/mpesa/c2b/{version}/registerurl",
            {
                "ShortCode": shortcode or self.shortcode,
                "ResponseType": response_type,
                "ConfirmationURL": confirmation_url,
                "ValidationURL": validation_url,
            },
        )
        return self._c2b_ack(body)

    def simulate_c2b(
        self,
        phone: str,
        amount: int,
        bill_ref: str | None = None,
        shortcode: str | None = None,
        command_id: str | None = None,
        version: str = "v2",
    ) -> C2BAck:
        """A customer paying `amount` whole shillings to the shortcode (sandbox only). Paybill by
        default when the client pays by paybill; `bill_ref` is the account the customer types."""
        command = command_id or self.transaction_type
        payload = {"ShortCode": shortcode or self.shortcode, "CommandID": command, "Amount": amount, "Msisdn": phone}
        if bill_ref is not None or command == "CustomerPayBillOnline":
            payload["BillRefNumber"] = bill_ref
        return self._c2b_ack(self._authed_post(f"/mpesa/c2b/{version}/simulate", payload))

    @staticmethod
    def _c2b_ack(body: dict) -> C2BAck:
        try:
            return C2BAck(
                str(body["OriginatorCoversationID"]),
                str(body.get("ResponseCode", "0")),
                str(body.get("ResponseDescription", "")),
            )
        except KeyError:
            raise DarajaError(200, "unexpected", f"unreadable C2B answer: {body!r}") from None

    # -- B2C and Transaction Status ----------------------------------------------------------
    def b2c_payment(
        self,
        originator_conversation_id: str,
        phone: str,
        amount: int,
        remarks: str,
        result_url: str,
        timeout_url: str,
        command_id: str = "BusinessPayment",
        occasion: str = "",
        party_a: str | None = None,
        version: str = "v3",
    ) -> AsyncAck:
        """Pays `amount` whole shillings to `phone`. `originator_conversation_id` is ours and
        unique per payout attempt: Daraja refuses a second one (500.002.1001), and Transaction
        Status finds the attempt by it. Raises NoInitiator, DarajaError or DarajaUnavailable."""
        name, credential = self._initiator()
        payload = {
            "InitiatorName": name,
            "SecurityCredential": credential,
            "CommandID": command_id,
            "Amount": amount,
            "PartyA": party_a or self.shortcode,
            "PartyB": phone,
            "Remarks": (remarks or "Payment")[:100],
            "QueueTimeOutURL": timeout_url,
            "ResultURL": result_url,
            "Occassion": occasion[:100],  # Daraja's spelling
        }
        if version == "v3":
            payload = {"OriginatorConversationID": originator_conversation_id, **payload}
        return self._async_ack(self._authed_post(f"/mpesa/b2c/{version}/paymentrequest", payload))

    def transaction_status(
        self,
        result_url: str,
        timeout_url: str,
        transaction_id: str | None = None,
        original_conversation_id: str | None = None,
        remarks: str = "Transaction status",
        occasion: str = "",
        party_a: str | None = None,
        identifier_type: str = "4",
    ) -> AsyncAck:
        """Asks about a transaction by its M-Pesa receipt or by the OriginatorConversationID we
        gave it; the answer comes to `result_url`. Raises NoInitiator, DarajaError or DarajaUnavailable."""
        if not (transaction_id or original_conversation_id):
            raise ValueError("a receipt (transaction_id) or an original_conversation_id is needed")
        name, credential = self._initiator()
        payload = {
            "Initiator": name,
            "SecurityCredential": credential,
            "CommandID": "TransactionStatusQuery",
            "TransactionID": transaction_id or "",
            "OriginalConversationID": original_conversation_id or "",
            "PartyA": party_a or self.shortcode,
            "IdentifierType": identifier_type,
            "ResultURL": result_url,
            "QueueTimeOutURL": timeout_url,
            "Remarks": remarks[:100],
            "Occasion": occasion[:100],
        }
        return self._async_ack(self._authed_post("/mpesa/transactionstatus/v1/query", payload))

    def _initiator(self) -> tuple[str, str]:
        """The initiator's name and a fresh SecurityCredential (PKCS#1 v1.5 is randomised)."""
        if not (self.initiator_name and self.initiator_password and self.certificate_pem):
            raise NoInitiator("the initiator name, its password and Safaricom's certificate are needed")
        return self.initiator_name, security_credential(self.initiator_password, self.certificate_pem)

    @staticmethod
    def _async_ack(body: dict) -> AsyncAck:
        try:
            return AsyncAck(
                str(body["ConversationID"]),
                str(body["OriginatorConversationID"]),
                str(body.get("ResponseCode", "0")),
                str(body.get("ResponseDescription", "")),
            )
        except KeyError:
            raise DarajaError(200, "unexpected", f"unreadable acknowledgement: {body!r}") from None

    # -- plumbing ----------------------------------------------------------------------
    def _authed_post(self, path: str, payload: dict) -> dict:
        for attempt in (1, 2):
            token = self.access_token()
            try:
                return self._call("POST", path, json=payload, headers={"Authorization": f"Bearer {token}"})
            except DarajaError as exc:
                if attempt == 1 and exc.error_code in STALE_TOKEN:
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
