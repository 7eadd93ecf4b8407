"""Provider simulators, mounted under /sandbox when SANDBOX is on."""
from flask import Flask


def init_app(app: Flask) -> None:
    if not app.config["SANDBOX"]:
        return
    from portal import errors
    from portal.extensions import csrf
    from portal.sandbox import daraja, phone

    csrf.exempt(daraja.bp)  # Daraja's API: bearer tokens, not sessions
    app.register_blueprint(daraja.bp)
    errors.register(daraja.bp.url_prefix, daraja.render_error)  # Daraja's envelope for 404, 405, 413 ...
    app.register_blueprint(phone.bp)  # a page for people: CSRF stays on
