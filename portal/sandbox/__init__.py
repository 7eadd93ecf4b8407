"""Provider simulators, mounted under /sandbox when SANDBOX is on."""
from flask import Flask


def init_app(app: Flask) -> None:
    if not app.config["SANDBOX"]:
        return
    from portal.extensions import csrf
    from portal.sandbox import daraja, phone

    csrf.exempt(daraja.bp)  # Daraja's API: bearer tokens, not sessions
    app.register_blueprint(daraja.bp)
    # A wrong method fails before a blueprint is matched, so its handler lives on the app.
    app.register_error_handler(405, daraja.wrong_method)
    app.register_blueprint(phone.bp)  # a page for people: CSRF stays on
