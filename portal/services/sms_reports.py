"""Africa's Talking delivery reports: read from the inbox and applied to the SMS their messageId
names; the URL AT posts them to.

Guarantees: a report is applied only when it came through a URL we handed out (a valid token
for the merchant whose SMS it is, or for the platform's account, which sends for everyone);
final statuses never move (a repeat is a harmless duplicate, a contradiction is recorded and
ignored); a report for an id we do not know yet is kept as an orphan and applied once the send
is recorded (replay_orphans, and the sweeper's step for one that lands just after that look).
"""

import re
from dataclasses import dataclass
from datetime import datetime
from urllib.parse import parse_qsl

from sqlalchemy import select, update

from portal.extensions import db
from portal.models import Callback, Sms, SmsStatus
from portal.models.payment import ORPHANED
from portal.services import inbox
from portal.services.links import callback_token, external_url, merchant_of_ref, merchant_ref
from portal.services.sweeper import BATCH, each_row, step
from portal.timeutil import utcnow

S = SmsStatus
PROVIDER, KIND = "africastalking", "delivery_report"
PLATFORM_REF = "AT"  # the URL in the platform's own AT account (and the simulator's)
DELIVERED = {"Success"}  # on the handset
UNDELIVERED = {"Failed", "Rejected", "Expired"}  # final failures (Expired: seen in the wild)
MESSAGE_ID = re.compile(r"[\x21-\x7e]{1,64}")
STATUS = re.compile(r"[A-Za-z]{1,32}")
MAX_FIELDS = 50


@dataclass(frozen=True)
class Report:
    message_id: str
    status: str  # Sent, Submitted, Buffered (on its way), Success, Failed, Rejected (final), ...
    failure_reason: str | None


def delivery_report_url(merchant_id: int | None = None) -> str:
    """The Delivery Reports URL for AT's dashboard: a merchant's own account's, or (None) the platform's."""
    ref = PLATFORM_REF if merchant_id is None else merchant_ref(merchant_id)
    return external_url("sms_webhooks.delivery_reports", ref=ref, token=callback_token(ref))


def parse(raw: bytes) -> Report:
    """A report form-encoded, as AT posts it, or a JSON object. Raises inbox.Malformed."""
    if raw.lstrip()[:1] in (b"{", b"["):
        data = inbox.read_json(raw)
    else:
        try:
            data = dict(parse_qsl(raw.decode("utf-8"), keep_blank_values=True, max_num_fields=MAX_FIELDS))
        except (UnicodeDecodeError, ValueError):
            raise inbox.Malformed("neither a form nor JSON") from None
    if not isinstance(data, dict):
        raise inbox.Malformed("not a delivery report (an object with id and status)")
    message_id, status = data.get("id"), data.get("status")
    if not (isinstance(message_id, str) and MESSAGE_ID.fullmatch(message_id)):
        raise inbox.Malformed("id is not a messageId")
    if not (isinstance(status, str) and STATUS.fullmatch(status)):
        raise inbox.Malformed("status is not a word")
    reason = data.get("failureReason")
    reason = inbox.clean(reason.strip(), 64) if isinstance(reason, str) and reason.strip() else None
    return Report(message_id, status, reason)


def _token_problem(item: inbox.Item, sms: Sms) -> str | None:
    if not item.token_valid:
        return "no valid token in its URL"
    ref = item.args.get("ref")
    if ref == PLATFORM_REF or merchant_of_ref(ref) == sms.merchant_id:
        return None
    return "its URL is another account's"


@inbox.interpreter(PROVIDER, KIND)
def interpret(item: inbox.Item) -> inbox.Verdict:
    try:
        report = parse(item.raw)
    except inbox.Malformed as exc:
        return inbox.Verdict("invalid", str(exc))
    sms = db.session.scalars(select(Sms).where(Sms.provider_message_id == report.message_id).limit(1)).first()
    if sms is None:
        return inbox.Verdict("orphan", "no SMS has this messageId (yet)", provider_id=report.message_id)
    found = {"provider_id": report.message_id, "merchant_id": sms.merchant_id}
    problem = _token_problem(item, sms)
    if problem:
        return inbox.Verdict("rejected", f"{problem}; not applied", status=sms.status, **found)
    becomes = S.DELIVERED if report.status in DELIVERED else S.REJECTED if report.status in UNDELIVERED else None
    if sms.status in S.FINAL:
        outcome = "duplicate" if becomes == sms.status else "rejected"
        return inbox.Verdict(outcome, f"the SMS is already {sms.status}: {report.status} changes nothing", **found)
    values = {"provider_status": report.status, "updated_at": utcnow()}
    if becomes is not None:
        values.update(status=becomes, failure_reason=report.failure_reason, delivered_at=utcnow())
    moved = db.session.execute(
        update(Sms)
        .where(Sms.id == sms.id, Sms.status == S.SENT)
        .values(**values)
        .execution_options(synchronize_session=False)
    ).rowcount
    if not moved:  # another copy settled it a moment ago
        return inbox.Verdict("duplicate", "the SMS was settled meanwhile", **found)
    return inbox.Verdict("applied", f"the SMS is {becomes or 'on its way'} ({report.status})", **found)


def replay_orphans(message_id: str) -> int:
    """Reads again the reports that came before their SMS was recorded as sent."""
    early = inbox.orphans(PROVIDER, KIND, message_id)
    inbox.replay(early)
    return len(early)


@step("sms_reports_orphaned")
def adopt_orphans(now: datetime) -> int:
    """Reports stored as orphans whose SMS is now recorded as sent (the send's own look at
    them came just before their verdict did)."""
    table = Callback.__table__.c
    rows = db.session.scalars(
        select(table.id)
        .join(Sms, Sms.provider_message_id == table.provider_id)
        .where(table.provider == PROVIDER, table.kind == KIND, ORPHANED, Sms.status == S.SENT)
        .order_by(table.id)
        .limit(BATCH)
    ).all()
    return each_row(rows, lambda ident: inbox.reread(db.session.get(Callback, ident)), inbox.record_error)
