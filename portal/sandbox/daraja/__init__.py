"""The Daraja simulator: apps and OAuth (oauth), M-Pesa Express (stk), C2B (c2b), B2C (b2c),
Transaction Status (status), the organisations' accounts (accounts), the initiators' key pair
and credential check (initiators), and its HTTP face (views)."""

from portal.models import Merchant
from portal.sandbox.daraja import initiators, oauth, stk


def provision(merchant: Merchant) -> None:
    """Gives a new merchant a Daraja app in the simulator, named after it (its prompts read
    "Pay KES 100 to DEMO SHOP?"), the public test shortcode and passkey, and the app's API
    operator for B2C and Transaction Status with the simulator's certificate."""
    app = oauth.create_app_credentials(merchant.name)
    merchant.daraja_consumer_key, merchant.daraja_consumer_secret = app.consumer_key, app.consumer_secret
    merchant.daraja_shortcode, merchant.daraja_passkey = stk.PUBLIC_SHORTCODE, stk.PUBLIC_PASSKEY
    merchant.daraja_initiator_name, merchant.daraja_initiator_password = app.initiator_name, app.initiator_password
    merchant.daraja_certificate = initiators.certificate_pem()
