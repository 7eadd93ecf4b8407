"""Provider simulators, mounted under /sandbox when SANDBOX is on: one package per provider
(daraja/, africastalking/ and paystack/), the virtual phone, and what they share:
delivery of callbacks and webhooks (delivery), fault switches (faults, with /sandbox/faults)."""

from flask import Flask


def init_app(app: Flask) -> None:
    if not app.config["SANDBOX"]:
        return
    from portal import errors
    from portal.extensions import csrf
    from portal.sandbox import daraja, faults, paystack, phone
    from portal.sandbox.africastalking import views as at_views
    from portal.sandbox.daraja import views as daraja_views
    from portal.sandbox.paystack import charges as paystack_charges
    from portal.sandbox.paystack import checkout as paystack_checkout
    from portal.sandbox.paystack import views as paystack_views

    # Services provision merchants through this registry and never import the sandbox.
    provisioners = app.extensions.setdefault("provisioners", {})
    provisioners["daraja"], provisioners["paystack"] = daraja.provision, paystack.provision
    paystack_charges.register(app)  # Paystack's M-Pesa charges are prompts on the virtual phone too
    csrf.exempt(daraja_views.bp)  # Daraja's API: bearer tokens, not sessions
    app.register_blueprint(daraja_views.bp)
    errors.register(daraja_views.bp.url_prefix, daraja_views.render_error)  # Daraja's envelope for 404, 405, 413
    for bp in (at_views.bp, at_views.outbox):  # AT's API: an apiKey header, not sessions
        csrf.exempt(bp)
        app.register_blueprint(bp)
    errors.register(at_views.bp.url_prefix, at_views.render_error)  # AT's plain-text errors
    errors.register(at_views.outbox.url_prefix, errors.json_error)
    csrf.exempt(paystack_views.bp)  # Paystack's API: a Bearer secret key, not sessions
    app.register_blueprint(paystack_views.bp)
    errors.register(paystack_views.bp.url_prefix, paystack_views.render_error)  # Paystack's refusal body
    app.register_blueprint(paystack_checkout.bp)  # the hosted checkout, a page for people: CSRF stays on
    errors.register(paystack_checkout.bp.url_prefix, paystack_checkout.render_error)
    csrf.exempt(faults.bp)  # a JSON switchboard for tests and benchmarks
    app.register_blueprint(faults.bp)
    errors.register(faults.bp.url_prefix, errors.json_error)
    app.register_blueprint(phone.bp)  # a page for people: CSRF stays on
