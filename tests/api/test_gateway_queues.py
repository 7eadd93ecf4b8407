"""The gateway's queue routes over real HTTP (live app, worker, Daraja simulator): the queue
and dead-letter figures, the merchant's dead letters page by page, and a retry that runs
the job again, once, and resolves its row."""

import threading
from datetime import timedelta

from rq import Queue
from rq.job import Job

from portal.extensions import db
from portal.models import DeadLetter
from portal.queueing import QUEUES
from portal.sandbox import faults
from portal.services.dead_letters import retry_job_id
from portal.timeutil import utcnow
from tests.helpers import dead_letter_row, failed_stk_query, settled

USED_500 = faults.USED + "SANDBOX_FAULT_API_500"  # how many calls the simulator's 500 switch answered


def listed(api, **params) -> list[dict]:
    answer = api.get("/api/dead-letter", params=params)
    assert answer.status_code == 200, answer.text
    return answer.json()["data"]


def row_of(app, ident: int) -> DeadLetter:
    with app.app_context():
        row = db.session.get(DeadLetter, ident)
        db.session.expunge(row)
        return row


def test_a_retry_runs_the_job_again_and_resolves_its_dead_letter(app, api):
    dead_letter_id, payment_id = failed_stk_query(app, api)
    (entry,) = listed(api)
    assert entry["id"] == dead_letter_id and entry["status"] == "failed"
    assert (entry["name"], entry["arguments"], entry["queue"], entry["paymentId"]) == (
        "query_stk_payment",
        [payment_id],
        "payments",
        payment_id,
    )
    assert entry["description"] == "Ask M-Pesa for the result of an STK push"
    assert entry["attempts"] == 3  # the first and two retries
    assert entry["error"] == {"type": "DarajaError", "message": "500.003.1001: Internal Server Error"}
    assert "traceback" not in entry  # the servers' business, not the merchant's
    assert api.get(f"/api/transactions/{payment_id}").json()["data"]["status"] == "processing"

    app.config["SANDBOX_FAULT_API_500"] = 0  # the cause is fixed: Daraja answers queries again
    answer = api.post(f"/api/dead-letter/{dead_letter_id}/retry")
    assert answer.status_code == 202, answer.text
    body = answer.json()
    assert body["success"] is True and body["message"]
    assert (body["data"]["status"], body["data"]["retryCount"]) == ("retrying", 1)
    assert body["data"]["retriedAt"]
    settled(app)

    (entry,) = listed(api)
    assert entry["status"] == "resolved" and entry["resolvedAt"]
    tx = api.get(f"/api/transactions/{payment_id}").json()["data"]
    assert (tx["status"], tx["resultCode"]) == ("completed", "0")  # the query ran and its answer was applied

    again = api.post(f"/api/dead-letter/{dead_letter_id}/retry")
    assert again.status_code == 409
    assert again.json()["error"] == "ALREADY_RESOLVED" and again.json()["data"]["status"] == "resolved"
    stats = api.get("/api/retry-queue/stats").json()["data"]
    assert stats["deadLetters"] == {"unresolved": 0, "retrying": 0, "resolved": 1, "retried": 1, "total": 1}


def test_two_retries_at_once_run_the_job_once(app, api, worker):
    dead_letter_id, _ = failed_stk_query(app, api)  # Daraja still fails every query: each run is counted
    redis = app.extensions["redis"]
    runs_before = int(redis.get(USED_500))
    app.config["JOB_RETRIES"] = 0  # the retried job fails for good at its first run
    answers, start = [], threading.Barrier(2)

    def ask():
        start.wait()
        answers.append(api.post(f"/api/dead-letter/{dead_letter_id}/retry"))

    worker.pause()  # neither request can see the other's job run
    try:
        threads = [threading.Thread(target=ask) for _ in range(2)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    finally:
        worker.resume()
    assert sorted(a.status_code for a in answers) == [202, 409]
    assert next(a for a in answers if a.status_code == 409).json()["error"] == "RETRY_IN_PROGRESS"
    settled(app)

    assert int(redis.get(USED_500)) == runs_before + 1  # one more query: the job ran once
    row = row_of(app, dead_letter_id)
    assert (row.status, row.retry_count, row.attempts) == ("failed", 1, 4)  # failed again, on its own row


def test_a_retry_under_way_is_refused_and_one_redis_lost_may_be_asked_again(app, api, accounts):
    merchant_id = accounts["merchant"]["id"]
    with app.app_context():
        # asked for a moment ago: its job goes out after that request's commit, maybe not yet
        just_asked = dead_letter_row(merchant_id, 1, status="retrying", retry_count=1, retried_at=utcnow()).id
        # asked for five minutes ago, and Redis has no job for it: lost
        lost = dead_letter_row(
            merchant_id, 2, status="retrying", retry_count=1, retried_at=utcnow() - timedelta(minutes=5)
        ).id
    refused = api.post(f"/api/dead-letter/{just_asked}/retry")
    assert refused.status_code == 409 and refused.json()["error"] == "RETRY_IN_PROGRESS"
    assert row_of(app, just_asked).retry_count == 1
    assert Job.exists(retry_job_id(just_asked), connection=app.extensions["redis"]) is False

    again = api.post(f"/api/dead-letter/{lost}/retry")
    assert again.status_code == 202 and again.json()["data"]["retryCount"] == 2
    settled(app)
    assert row_of(app, lost).status == "resolved"  # payment 2 does not exist: nothing to ask, done


def test_stats_count_every_queue_and_the_merchants_dead_letters(app, api, accounts, worker):
    with app.app_context():
        merchant_id = accounts["merchant"]["id"]
        dead_letter_row(merchant_id, 1)
        dead_letter_row(merchant_id, 2, status="retrying", retry_count=1, retried_at=utcnow())
        dead_letter_row(merchant_id, 3, status="resolved", retry_count=2, resolved_at=utcnow())
        dead_letter_row(accounts["other_merchant"]["id"], 4)  # someone else's
    worker.pause()
    try:
        Queue("payments", connection=app.extensions["redis"]).enqueue_in(
            timedelta(minutes=5), "portal.jobs.query_stk_payment", 1
        )
        answer = api.get("/api/retry-queue/stats", params={"junk": "\x00"})
    finally:
        worker.resume()
    assert answer.status_code == 200
    data = answer.json()["data"]
    assert [q["name"] for q in data["queues"]] == list(QUEUES)
    payments = next(q for q in data["queues"] if q["name"] == "payments")
    assert payments == {"name": "payments", "queued": 0, "scheduled": 1, "started": 0, "failed": 0}
    assert data["deadLetters"] == {"unresolved": 2, "retrying": 1, "resolved": 1, "retried": 2, "total": 3}


def test_dead_letters_come_newest_first_in_pages_and_only_the_merchants_own(app, api, other_api, accounts):
    start = utcnow() - timedelta(hours=1)
    with app.app_context():
        mine = [
            dead_letter_row(accounts["merchant"]["id"], n, created_at=start + timedelta(minutes=n)).id
            for n in range(25)
        ]
        theirs = dead_letter_row(accounts["other_merchant"]["id"], 99).id
        dead_letter_row(None, 98)  # a job that concerns no merchant: nobody's
    newest_first = mine[::-1]

    page = api.get("/api/dead-letter", params={"limit": 10, "page": 3}).json()
    assert [d["id"] for d in page["data"]] == newest_first[20:]
    assert page["pagination"] == {"page": 3, "limit": 10, "total": 25, "totalPages": 3}
    first = api.get("/api/dead-letter").json()
    assert [d["id"] for d in first["data"]] == newest_first[:20]
    assert first["pagination"] == {"page": 1, "limit": 20, "total": 25, "totalPages": 2}
    assert api.get("/api/dead-letter", params={"page": 9}).json()["data"] == []
    assert listed(api, status="resolved") == []
    assert len(listed(api, status="failed", limit=100)) == 25
    assert [d["id"] for d in listed(other_api)] == [theirs]


def test_another_merchants_dead_letter_is_not_found_and_not_retried(app, other_api, accounts):
    with app.app_context():
        ident = dead_letter_row(accounts["merchant"]["id"], 1).id
    answer = other_api.post(f"/api/dead-letter/{ident}/retry")
    assert answer.status_code == 404
    assert answer.json() == {"success": False, "message": f"No dead letter with id {ident}", "error": "NOT_FOUND"}
    row = row_of(app, ident)
    assert (row.status, row.retry_count, row.retried_at) == ("failed", 0, None)
    assert Job.exists(retry_job_id(ident), connection=app.extensions["redis"]) is False


def test_only_the_gateways_own_jobs_are_run_again(app, api, accounts):
    with app.app_context():
        ident = dead_letter_row(accounts["merchant"]["id"], 1, func="os.system", args=["touch /tmp/owned"]).id
    answer = api.post(f"/api/dead-letter/{ident}/retry")
    assert answer.status_code == 409 and answer.json()["error"] == "NOT_RETRYABLE"
    assert row_of(app, ident).status == "failed"
    assert Job.exists(retry_job_id(ident), connection=app.extensions["redis"]) is False


def test_hostile_input_is_refused_with_4xx(api, live_server):
    bad = api.get("/api/dead-letter", params={"page": "0", "limit": "²", "status": "failed\x00"})
    assert bad.status_code == 400
    body = bad.json()
    assert body["error"] == "VALIDATION_ERROR"
    assert {e["field"] for e in body["errors"]} == {"page", "limit", "status"}
    for params in ({"limit": "101"}, {"limit": "-1"}, {"page": "9" * 400}, {"status": "x" * 10_000}):
        assert api.get("/api/dead-letter", params=params).status_code == 400, params
    assert api.post("/api/dead-letter/99999999999999999999/retry").status_code == 404
    assert api.post("/api/dead-letter/abc/retry").status_code == 404
    assert (
        api.post(
            "/api/dead-letter/1/retry", data=b"\xff\x00{", headers={"Content-Type": "application/json"}
        ).status_code
        == 404
    )
    assert api.get("/api/dead-letter/1/retry").status_code == 405
    from tests.conftest import Api

    anonymous = Api(live_server, None)
    for path in ("/api/retry-queue/stats", "/api/dead-letter"):
        assert anonymous.get(path).status_code == 401
    assert anonymous.post("/api/dead-letter/1/retry").status_code == 401
