"""Provider simulators, mounted under /sandbox when SANDBOX is on: one package per provider
(daraja/ and africastalking/ today; paystack/ beside them), the virtual phone, and what they share:
delivery of callbacks and webhooks (delivery), fault switches (faults, with /sandbox/faults)."""

from flask import Flask


def init_app(app: Flask) -> None:
    if not app.config["SANDBOX"]:
        return
    from portal import errors
    from portal.extensions import csrf
    from portal.sandbox import daraja, faults, phone
    from portal.sandbox.africastalking import views as at_views
    from portal.sandbox.daraja import views as daraja_views

    # Services provision merchants through this registry and never import the sandbox.
    app.extensions.setdefault("provisioners", {})["daraja"] = daraja.provision
    csrf.exempt(daraja_views.bp)  # Daraja's API: bearer tokens, not sessions
    app.register_blueprint(daraja_views.bp)
    errors.register(daraja_views.bp.url_prefix, daraja_views.render_error)  # Daraja's envelope for 404, 405, 413
    for bp in (at_views.bp, at_views.outbox):  # AT's API: an apiKey header, not sessions
        csrf.exempt(bp)
        app.register_blueprint(bp)
    errors.register(at_views.bp.url_prefix, at_views.render_error)  # AT's plain-text errors
    errors.register(at_views.outbox.url_prefix, errors.json_error)
    csrf.exempt(faults.bp)  # a JSON switchboard for tests and benchmarks
    app.register_blueprint(faults.bp)
    errors.register(faults.bp.url_prefix, errors.json_error)
    app.register_blueprint(phone.bp)  # a page for people: CSRF stays on
