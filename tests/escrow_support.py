"""What the escrow tests share: a bookings payment paid through the Paystack simulator, its
escrow read back, and waits for the escrow to settle."""

import secrets

from portal.extensions import db
from portal.models import Escrow, Merchant, Payment, SandboxPaystackTransfer
from portal.services import escrow
from portal.services.paystack import charges
from tests.conftest import wait_for

TEACHER = "254712345678"
PARENT = "254722000111"


def paid(app, merchant_id: int, booking: str = "booking_1", amount: int = 50000, phone: str = PARENT) -> int:
    """A bookings payment by M-Pesa through Paystack, which the simulator pays (nobody holds the
    phone); its id."""
    with app.app_context():
        started = charges.start_mpesa_charge(
            db.session.get(Merchant, merchant_id),
            api="bookings",
            reference=f"bk-{secrets.token_hex(8)}",
            amount=amount,
            email="parent@example.com",
            phone=phone,
            meta={"bookingId": booking},
        )
        return started.payment.id


def escrow_of(app, payment_id: int) -> Escrow | None:
    with app.app_context():
        row = Escrow.query.filter_by(payment_id=payment_id).first()
        if row is not None:
            db.session.expunge(row)
        return row


def held(app, payment_id: int) -> Escrow:
    return wait_for(lambda: escrow_of(app, payment_id), timeout=20, what=f"payment {payment_id} to be held")


def row(app, escrow_id: int) -> Escrow:
    with app.app_context():
        found = db.session.get(Escrow, escrow_id)
        db.session.expunge(found)
        return found


def until(app, escrow_id: int, *statuses: str) -> Escrow:
    return wait_for(
        lambda: (r := row(app, escrow_id)).status in statuses and r,
        timeout=25,
        what=f"escrow {escrow_id} to be {' or '.join(statuses)}",
    )


def payment(app, payment_id: int) -> Payment:
    with app.app_context():
        found = db.session.get(Payment, payment_id)
        db.session.expunge(found)
        return found


def release(app, merchant_id: int, booking: str = "booking_1", phone: str = TEACHER, amount: int = 50000):
    with app.app_context():
        return escrow.release(db.session.get(Merchant, merchant_id), booking, phone, amount, "api")


def choose_rail(app, merchant_id: int, rail: str | None) -> None:
    with app.app_context():
        escrow.save_payout_rail(db.session.get(Merchant, merchant_id), rail)


def transfers_paid(app, reference: str) -> list[SandboxPaystackTransfer]:
    with app.app_context():
        rows = SandboxPaystackTransfer.query.filter_by(reference=reference).all()
        db.session.expunge_all()
        return rows
