"""GET /api/retry-queue/stats, GET /api/dead-letter and POST /api/dead-letter/{id}/retry:
the job queues' figures and the key's merchant's dead letters, in the gateway's envelope.

The queues are shared by every merchant: the stats give their counts only (how busy the
gateway is, as a status page would), never a job's name, arguments or error. Dead letters
are the merchant's own: another merchant's id answers 404 and is never retried."""

import math

import redis
from flask import g, request

from portal import openapi
from portal.api import envelope
from portal.api.gateway import bp, schemas
from portal.jobs import TITLES
from portal.models import DeadLetter
from portal.queueing import get_redis, queue_figures
from portal.services import dead_letters
from portal.timeutil import iso_z

MAX_ID = 2**31 - 1  # ids are 32-bit integers: a larger one names nothing (and SQLite cannot bind it)
REFUSALS = {
    dead_letters.AlreadyResolved: "ALREADY_RESOLVED",
    dead_letters.RetryInProgress: "RETRY_IN_PROGRESS",
    dead_letters.NotRetryable: "NOT_RETRYABLE",
}


def serialise(row: DeadLetter) -> dict:
    return {
        "id": row.id,
        "name": row.name,
        "description": TITLES.get(row.name, row.name),
        "arguments": row.args,
        "queue": row.queue,
        "jobId": row.job_id,
        "paymentId": row.payment_id,
        "error": {"type": row.error_type, "message": row.error},
        "attempts": row.attempts,
        "status": row.status,
        "retryCount": row.retry_count,
        "createdAt": iso_z(row.created_at),
        "failedAt": iso_z(row.failed_at),
        "retriedAt": iso_z(row.retried_at),
        "resolvedAt": iso_z(row.resolved_at),
    }


@openapi.operation(
    "The job queues' figures and the merchant's dead-letter counts", responses={200: schemas.RetryQueueStats}
)
@bp.get("/retry-queue/stats")
def retry_queue_stats():
    try:
        queues = queue_figures(get_redis())
    except redis.RedisError:  # the dead letters are in the database and still answer
        queues = None
    return envelope.ok({"queues": queues, "deadLetters": dead_letters.counts(g.merchant.id)})


@openapi.operation(
    "The merchant's failed jobs (dead letters), newest failure first, paged",
    query=schemas.DeadLetterQuery,
    responses={200: schemas.DeadLetterPage, 400: envelope.Failure},
)
@bp.get("/dead-letter")
def dead_letter_list():
    form = envelope.validate(schemas.DeadLetterQuery, request.args.to_dict())
    page, limit = form.page, form.limit
    query = dead_letters.newest_first(g.merchant.id, form.status)
    total = query.order_by(None).count()
    rows = query.offset((page - 1) * limit).limit(limit).all()
    return envelope.ok(
        [serialise(row) for row in rows],
        pagination={"page": page, "limit": limit, "total": total, "totalPages": math.ceil(total / limit)},
    )


@openapi.operation(
    "Run a dead letter's job again",
    body=openapi.EMPTY,
    responses={202: schemas.DeadLetterRetried, 404: envelope.Failure, 409: schemas.DeadLetterRefused},
)
@bp.post(f"/dead-letter/<int(max={MAX_ID}):dead_letter_id>/retry")
def dead_letter_retry(dead_letter_id: int):
    row = DeadLetter.get_for_merchant(g.merchant.id, id=dead_letter_id)
    if row is None:
        return envelope.fail(404, f"No dead letter with id {dead_letter_id}", "NOT_FOUND")
    try:
        row = dead_letters.retry(row)
    except dead_letters.RetryRefused as exc:
        return envelope.fail(409, str(exc), REFUSALS[type(exc)], data=serialise(row))
    return envelope.ok(serialise(row), message="Retry queued: the job runs again shortly", status=202)
