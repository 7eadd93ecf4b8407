"""The Daraja simulator: apps and OAuth (oauth), M-Pesa Express (stk), and its HTTP face (views).
C2B and B2C will join as modules beside stk."""

from portal.models import Merchant
from portal.sandbox.daraja import oauth, stk


def provision(merchant: Merchant) -> None:
    """Gives a new merchant a Daraja app in the simulator, named after it (its prompts read
    "Pay KES 100 to DEMO SHOP?"), and the public test shortcode and passkey."""
    app = oauth.create_app_credentials(merchant.name)
    merchant.daraja_consumer_key, merchant.daraja_consumer_secret = app.consumer_key, app.consumer_secret
    merchant.daraja_shortcode, merchant.daraja_passkey = stk.PUBLIC_SHORTCODE, stk.PUBLIC_PASSKEY
