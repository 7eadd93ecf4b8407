"""Water OTPs against the real database: issuing, verifying at a station, attempts and
blocking, expiry, completion, and two stations racing for one code."""

import hashlib
import itertools
import threading
from datetime import timedelta

import pytest
from sqlalchemy import select

from portal.extensions import db
from portal.models import Otp, OtpStatus, Payment, PaymentStatus, Station
from portal.services import otps
from portal.services.otps import OtpRefused
from portal.services.sweeper import sweep
from portal.timeutil import utcnow
from tests.helpers import stk_payment

S = OtpStatus
_serial = itertools.count(1)


def water_payment(merchant_id: int, status: str = PaymentStatus.COMPLETED, liters: int = 10) -> Payment:
    return stk_payment(
        merchant_id,
        f"WS-1700000000000-TEST{next(_serial):04d}",
        status,
        amount=liters * 500,
        api="water",
        meta={"liters": liters},
        completed_at=utcnow() if status == PaymentStatus.COMPLETED else None,
    )


def station(merchant_id: int, code: str = "KIOSK001", pulses: int = 1000) -> Station:
    row = Station(
        merchant_id=merchant_id,
        code=code,
        name=code.title(),
        pulses_per_liter=pulses,
        key_prefix=code[:8],
        key_hash=hashlib.sha256(code.encode()).hexdigest(),
    )
    db.session.add(row)
    db.session.commit()
    return row


@pytest.fixture
def merchant_id(ctx, accounts):
    return accounts["merchant"]["id"]


def refused(fn, *args) -> OtpRefused:
    with pytest.raises(OtpRefused) as info:
        fn(*args)
    return info.value


def test_a_code_is_six_digits_stored_only_as_its_hmac(merchant_id):
    payment = water_payment(merchant_id)
    otp, code = otps.issue(payment)
    db.session.commit()
    assert len(code) == 6 and code.isdigit()
    stored = db.session.execute(select(Otp.code_hmac)).scalar_one()
    assert code not in stored and stored != hashlib.sha256(code.encode()).hexdigest()  # not a bare hash
    assert stored == otps.digest(code)
    assert (otp.status, otp.liters, otp.attempts, otp.max_attempts) == (S.ACTIVE, 10, 0, 3)
    assert timedelta(minutes=9) < otp.expires_at - utcnow() <= timedelta(minutes=10)


def test_only_a_completed_payment_gets_a_code(merchant_id):
    for status in (PaymentStatus.PROCESSING, PaymentStatus.FAILED, PaymentStatus.CANCELLED):
        assert refused(otps.issue, water_payment(merchant_id, status)).error == "TRANSACTION_NOT_COMPLETED"
    assert db.session.execute(select(Otp)).first() is None


def test_liters_of_a_manual_code_are_at_most_those_paid_for(merchant_id):
    payment = water_payment(merchant_id, liters=10)
    assert refused(otps.issue, payment, 11).error == "INVALID_LITERS"
    assert refused(otps.issue, payment, 0).error == "INVALID_LITERS"
    otp, _ = otps.issue(payment, 4)
    assert otp.liters == 4


def test_the_right_code_locks_it_to_the_station_with_its_pulses(merchant_id):
    payment, here = water_payment(merchant_id, liters=10), station(merchant_id, pulses=1000)
    _, code = otps.issue(payment)
    db.session.commit()
    otp = otps.verify(payment, here, code)
    assert (otp.status, otp.station_id, otps.pulses(otp, here)) == (S.IN_PROGRESS, here.id, 10_000)
    assert otps.verify(payment, here, code).status == S.IN_PROGRESS  # a kiosk resending is answered alike
    assert otps.complete(payment, here).status == S.USED
    assert otps.complete(payment, here).status == S.USED  # and again
    assert refused(otps.verify, payment, here, code).error == "OTP_ALREADY_USED"


def test_three_wrong_codes_block_it_and_the_right_one_no_longer_works(merchant_id):
    payment, here = water_payment(merchant_id), station(merchant_id)
    _, code = otps.issue(payment)
    db.session.commit()
    wrong = f"{(int(code) + 1) % 10**6:06d}"
    first = refused(otps.verify, payment, here, wrong)
    assert (first.status, first.error, first.message) == (400, "INVALID_OTP", "Invalid OTP. 2 attempts remaining")
    assert refused(otps.verify, payment, here, wrong).message == "Invalid OTP. 1 attempt remaining"
    third = refused(otps.verify, payment, here, wrong)
    assert third.error == "OTP_BLOCKED"
    assert refused(otps.verify, payment, here, code).error == "OTP_BLOCKED"
    otp = otps.otp_of(payment)
    assert (otp.status, otp.attempts) == (S.BLOCKED, 3)


def test_a_second_station_is_refused_while_the_first_dispenses_and_after(merchant_id):
    payment = water_payment(merchant_id)
    first, second = station(merchant_id), station(merchant_id, "KIOSK002")
    _, code = otps.issue(payment)
    db.session.commit()
    otps.verify(payment, first, code)
    busy = refused(otps.verify, payment, second, code)
    assert (busy.status, busy.error) == (409, "OTP_IN_USE")
    assert refused(otps.complete, payment, second).status == 409
    otps.complete(payment, first)
    assert refused(otps.verify, payment, second, code).status == 403
    assert otps.otp_of(payment).attempts == 0  # refusals by state cost no attempt


def test_an_expired_code_is_refused_and_the_sweeper_marks_it(merchant_id):
    payment, here = water_payment(merchant_id), station(merchant_id)
    otp, code = otps.issue(payment)
    otp.expires_at = utcnow() - timedelta(seconds=1)
    db.session.commit()
    assert otps.view(otp).status == S.EXPIRED  # seen as expired before any sweep
    assert refused(otps.verify, payment, here, code).error == "OTP_EXPIRED"
    assert sweep()["otps_expired"] == 1
    db.session.refresh(otp)
    assert otp.status == S.EXPIRED


def test_issuing_again_replaces_an_unused_code_but_never_a_used_one(merchant_id):
    payment, here = water_payment(merchant_id), station(merchant_id)
    _, old = otps.issue(payment)
    db.session.commit()
    otp, new = otps.issue(payment)
    db.session.commit()
    assert otp.issued == 2
    if new != old:  # one draw in a million repeats
        assert refused(otps.verify, payment, here, old).error == "INVALID_OTP"
    otps.verify(payment, here, new)
    assert refused(otps.issue, payment).error == "OTP_ALREADY_USED"


def test_a_station_that_never_finishes_is_taken_as_finished_after_the_timeout(app, merchant_id):
    payment, here = water_payment(merchant_id), station(merchant_id)
    otp, code = otps.issue(payment)
    db.session.commit()
    otps.verify(payment, here, code)
    assert sweep()["otps_dispensed"] == 0
    otp.verified_at = utcnow() - timedelta(seconds=app.config["OTP_DISPENSE_TIMEOUT"] + 1)
    db.session.commit()
    assert sweep()["otps_dispensed"] == 1
    db.session.refresh(otp)
    assert otp.status == S.USED


@pytest.mark.parametrize("same_code", [True, False], ids=["right-code", "wrong-code"])
def test_stations_racing_for_one_code_resolve_exactly_once(app, merchant_id, same_code):
    """Eight verifications at once at eight stations: with the right code exactly one station
    wins and the others are told it is in use; with a wrong code the attempts stop at the limit."""
    payment = water_payment(merchant_id)
    stations = [station(merchant_id, f"KIOSK{n:03d}") for n in range(1, 9)]
    _, code = otps.issue(payment)
    db.session.commit()
    typed = code if same_code else f"{(int(code) + 1) % 10**6:06d}"
    payment_id, station_ids = payment.id, [s.id for s in stations]
    start, outcomes = threading.Barrier(len(stations)), []

    def verify(station_id: int) -> None:
        with app.app_context():
            start.wait()
            try:
                otps.verify(db.session.get(Payment, payment_id), db.session.get(Station, station_id), typed)
                outcomes.append("won")
            except OtpRefused as exc:
                outcomes.append(exc.error)
            finally:
                db.session.remove()

    threads = [threading.Thread(target=verify, args=(ident,)) for ident in station_ids]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    db.session.expire_all()
    otp = otps.otp_of(db.session.get(Payment, payment_id))
    if same_code:
        assert outcomes.count("won") == 1, outcomes
        assert set(outcomes) - {"won"} <= {"OTP_IN_USE"}, outcomes
        assert otp.status == S.IN_PROGRESS and otp.station_id in station_ids
    else:
        assert "won" not in outcomes
        assert otp.status == S.BLOCKED and otp.attempts == 3, outcomes
        assert outcomes.count("INVALID_OTP") + outcomes.count("OTP_BLOCKED") == len(stations)
