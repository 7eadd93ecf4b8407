"""Internet packages: a merchant's clients (storefronts) and packages, and the M-Pesa payments
a client takes for a package. The amount always comes from the package, never from the request.

Raises IspInputError (a message for the person who typed it) for names and prices, and the
services.errors of an STK push for payments.
"""

import secrets
import string
import uuid

from sqlalchemy.orm import joinedload

from portal.extensions import db
from portal.models import InternetPackage, IspClient, Payment
from portal.services.mpesa.stk import initiate_stk_push
from portal.timeutil import as_nairobi, utcnow

API = "isp"
MAX_PRICE_KES = 250_000  # Daraja's per-transaction ceiling (M-Pesa takes whole shillings from 1)
MAX_NAME = 120
_SUFFIX = string.ascii_lowercase + string.digits


class IspInputError(ValueError):
    """A name or price that cannot be used; the message is meant for the person who typed it."""


def _name(raw, what: str) -> str:
    name = raw.strip() if isinstance(raw, str) else ""
    if not name:
        raise IspInputError(f"Give the {what} a name.")
    if len(name) > MAX_NAME:
        raise IspInputError(f"Keep the {what}'s name to {MAX_NAME} characters or fewer.")
    if any(ord(ch) < 32 or ord(ch) == 127 for ch in name):
        raise IspInputError(f"The {what}'s name must be on one line, without control characters.")
    return name


def price_in_cents(kes) -> int:
    """A package price typed in whole shillings, as minor units."""
    if isinstance(kes, bool) or not isinstance(kes, int) or not 1 <= kes <= MAX_PRICE_KES:
        raise IspInputError(f"The price is a whole number of shillings from 1 to {MAX_PRICE_KES:,}.")
    return kes * 100


# -- management (CLI and portal) --------------------------------------------------------
def clients_of(merchant_id: int) -> list[IspClient]:
    return IspClient.for_merchant(merchant_id).order_by(IspClient.created_at.desc(), IspClient.name).all()


def packages_of(merchant_id: int) -> list[InternetPackage]:
    query = InternetPackage.for_merchant(merchant_id)
    return query.order_by(InternetPackage.price, InternetPackage.name, InternetPackage.created_at).all()


def create_client(merchant_id: int, name) -> IspClient:
    client = IspClient(id=str(uuid.uuid4()), merchant_id=merchant_id, name=_name(name, "client"), active=True)
    db.session.add(client)
    db.session.commit()
    return client


def create_package(merchant_id: int, name, price_kes) -> InternetPackage:
    package = InternetPackage(
        id=str(uuid.uuid4()),
        merchant_id=merchant_id,
        name=_name(name, "package"),
        price=price_in_cents(price_kes),
        currency="KES",
        active=True,
    )
    db.session.add(package)
    db.session.commit()
    return package


def set_active(row: IspClient | InternetPackage, active: bool) -> None:
    row.active = active
    db.session.commit()


# -- the public API ---------------------------------------------------------------------
def active_client(client_id: str) -> IspClient | None:
    """The client with this id, with its merchant (one statement), if it is active."""
    return (
        db.session.query(IspClient)
        .options(joinedload(IspClient.merchant))
        .filter(IspClient.id == client_id, IspClient.active.is_(True))
        .first()
    )


def package_of(client: IspClient, package_id: str) -> InternetPackage | None:
    """The package, if it belongs to the client's merchant (active or not)."""
    return InternetPackage.get_for_merchant(client.merchant_id, id=package_id)


def new_reference() -> str:
    """PKG-<Nairobi time to the second>-<6 random letters and digits>: PKG-20260128150605-abc123."""
    suffix = "".join(secrets.choice(_SUFFIX) for _ in range(6))
    return f"PKG-{as_nairobi(utcnow()):%Y%m%d%H%M%S}-{suffix}"


def initiate(client: IspClient, package: InternetPackage, *, phone: str, description: str) -> Payment:
    """Asks the customer at `phone` (254XXXXXXXXX) to pay the package's price to the client's
    merchant. The payment remembers the client and package. Raises what initiate_stk_push raises."""
    reference = new_reference()
    return initiate_stk_push(
        client.merchant,
        phone=phone,
        amount=package.price,
        # Shown on the customer's prompt and receipt: Daraja takes up to 12 letters and digits.
        account_reference="PKG" + reference[-6:],
        description=description,
        api=API,
        reference=reference,
        uid=str(uuid.uuid4()),
        meta={"isp_client_id": client.id, "package_id": package.id, "package_name": package.name},
    )


def payment_of(client: IspClient, checkout_id: str) -> Payment | None:
    """The client's own payment with this CheckoutRequestID; another client's, another merchant's
    or another API's is None, exactly like a missing one."""
    payment = Payment.get_for_merchant(client.merchant_id, checkout_request_id=checkout_id)
    if payment is None or payment.api != API or (payment.meta or {}).get("isp_client_id") != client.id:
        return None
    return payment
