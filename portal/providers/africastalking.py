"""Africa's Talking SMS client: the form endpoint /version1/messaging, one recipient per call.

AT answers a send with HTTP 201 and a JSON body whatever became of each recipient; transport
errors are plain text (401 bad credentials, 400 a missing field). Every way a send can end is a
type here, and each says whether trying again may help (`retryable`). Sending again after a
timeout may deliver a message twice: AT takes no idempotency key."""

from dataclasses import dataclass

import urllib3

from portal.providers.http import pool_for

LIVE_URL = "https://api.africastalking.com"
SANDBOX_URL = "https://api.sandbox.africastalking.com"
SANDBOX_USERNAME = "sandbox"  # AT's SDKs choose the sandbox host by this username alone
ACCEPTED_CODES = {100, 101, 102}  # Processed, Sent, Queued
RETRYABLE_CODES = {500, 501}  # InternalServerError, GatewayError: AT failed, not the message
# The number's own fault: InvalidPhoneNumber, UnsupportedNumberType, UserInBlacklist, DoNotDisturbRejection.
RECIPIENT_CODES = {403, 404, 406, 409}
TEXT_KEPT = 300  # characters of a plain-text answer kept in an error


def base_url_for(username: str) -> str:
    return SANDBOX_URL if username == SANDBOX_USERNAME else LIVE_URL


@dataclass(frozen=True)
class SmsAccepted:
    """AT took the message for this recipient; its delivery comes later, as a report."""

    message_id: str
    status_code: int
    status: str
    cost: str
    number: str


class AtError(Exception):
    """A send that did not end in SmsAccepted. `retryable`: the same send may succeed later."""

    retryable = False


class AtUnavailable(AtError):
    """AT could not be reached (`maybe_sent` False) or did not answer in time (True: it may
    have taken the message)."""

    retryable = True

    def __init__(self, message: str, maybe_sent: bool):
        super().__init__(message)
        self.maybe_sent = maybe_sent


class AtServerError(AtError):
    """AT answered 5xx: it failed, the message may or may not have been taken."""

    retryable = True

    def __init__(self, status: int, text: str):
        super().__init__(f"Africa's Talking answered HTTP {status}: {text}")
        self.status = status


class AtRefused(AtError):
    """AT refused the request itself (plain text): final until someone changes it."""

    def __init__(self, status: int, text: str):
        super().__init__(f"HTTP {status}: {text}")
        self.status = status
        self.text = text


class AtAuthError(AtRefused):
    """401 "The supplied authentication is invalid": wrong key, or a sandbox key with a live username."""


class AtBadRequest(AtRefused):
    """400, e.g. "Request is missing required form field 'to'"."""


class AtAccountRejected(AtError):
    """A 2xx with no recipients: the account or the request was refused (Message says why,
    e.g. InvalidSenderId)."""

    def __init__(self, message: str):
        super().__init__(f"Africa's Talking sent nothing: {message}")
        self.message = message


class AtRecipientRejected(AtError):
    """The recipient's statusCode is not a success (messageId "None")."""

    def __init__(self, status_code: int, status: str, number: str):
        super().__init__(f"{status} ({status_code}) for {number}")
        self.status_code = status_code
        self.status = status
        self.number = number

    @property
    def retryable(self) -> bool:
        return self.status_code in RETRYABLE_CODES

    @property
    def blames_recipient(self) -> bool:
        """The number cannot receive it (invalid, opted out): nobody can fix that by retrying."""
        return self.status_code in RECIPIENT_CODES


class AtUnexpected(AtError):
    """A success status with a body we cannot read: AT may have taken the message."""

    retryable = True


class AfricasTalkingClient:
    def __init__(
        self,
        base_url: str,
        username: str,
        api_key: str,
        timeout: float = 15.0,
        http: urllib3.PoolManager | None = None,
    ):
        self.base_url = base_url.rstrip("/")
        self.username = username
        self.api_key = api_key
        self.timeout = urllib3.Timeout(connect=min(5.0, timeout), read=timeout)
        self.http = http or pool_for(self.base_url)

    def send(self, to: str, message: str, sender_id: str | None = None) -> SmsAccepted:
        """Sends `message` to one number (+254...). Raises an AtError."""
        fields = {"username": self.username, "to": to, "message": message, "bulkSMSMode": "1"}
        if sender_id:
            fields["from"] = sender_id
        data = self._post("/version1/messaging", fields)
        return self._recipient(data)

    def _post(self, path: str, fields: dict) -> dict:
        try:
            response = self.http.request(
                "POST",
                self.base_url + path,
                fields=fields,
                encode_multipart=False,  # application/x-www-form-urlencoded, as AT's SDKs send
                headers={"apiKey": self.api_key, "Accept": "application/json"},
                timeout=self.timeout,
                retries=False,
            )
        except (urllib3.exceptions.ConnectTimeoutError, urllib3.exceptions.NewConnectionError) as exc:
            raise AtUnavailable(f"could not connect to Africa's Talking: {exc}", maybe_sent=False) from exc
        except urllib3.exceptions.ReadTimeoutError as exc:
            raise AtUnavailable(f"Africa's Talking did not answer in time: {exc}", maybe_sent=True) from exc
        except urllib3.exceptions.HTTPError as exc:  # reset or cut off mid-answer
            raise AtUnavailable(f"Africa's Talking connection failed: {exc}", maybe_sent=True) from exc
        status = response.status
        text = response.data.decode("utf-8", "replace")[:TEXT_KEPT].strip()
        if status >= 500:
            raise AtServerError(status, text or "empty answer")
        if status == 401:
            raise AtAuthError(status, text)
        if status == 400:
            raise AtBadRequest(status, text)
        if not 200 <= status < 300:
            raise AtRefused(status, text)
        try:
            body = response.json()
            return body["SMSMessageData"]
        except (ValueError, KeyError, TypeError):
            raise AtUnexpected(f"unreadable answer (HTTP {status}): {text}") from None

    @staticmethod
    def _recipient(data) -> SmsAccepted:
        recipients = data.get("Recipients") if isinstance(data, dict) else None
        if not isinstance(recipients, list):
            raise AtUnexpected(f"no Recipients in the answer: {str(data)[:TEXT_KEPT]}")
        if not recipients:
            raise AtAccountRejected(str(data.get("Message") or "no reason given")[:TEXT_KEPT])
        first = recipients[0]
        try:
            code, status, number = int(first["statusCode"]), str(first["status"]), str(first.get("number", ""))
        except (KeyError, TypeError, ValueError):
            raise AtUnexpected(f"unreadable recipient: {str(first)[:TEXT_KEPT]}") from None
        if code not in ACCEPTED_CODES:
            raise AtRecipientRejected(code, status, number)
        message_id = first.get("messageId")
        if not isinstance(message_id, str) or not message_id or message_id == "None":
            raise AtUnexpected(f"an accepted recipient without a messageId: {str(first)[:TEXT_KEPT]}")
        return SmsAccepted(message_id, code, status, str(first.get("cost", "")), number)
