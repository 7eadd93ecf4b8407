"""Portal views for internet packages: the merchant's clients (storefronts calling the isp API
with their client_id) and packages (what customers buy). List, add, deactivate and reactivate.
Every query goes through the current merchant; another merchant's id is a 404."""

import re

from flask import Blueprint, flash, redirect, render_template, url_for
from flask_login import current_user, login_required
from flask_wtf import FlaskForm
from wtforms import IntegerField, StringField
from wtforms.validators import DataRequired, InputRequired, Length, NumberRange

from portal.models import InternetPackage, IspClient
from portal.services import isp
from portal.web.forms import strip
from portal.web.htmx import is_htmx

bp = Blueprint("isp_pages", __name__)

NAME_RULES = [Length(max=isp.MAX_NAME, message=f"Keep the name to {isp.MAX_NAME} characters or fewer.")]


class ClientForm(FlaskForm):
    name = StringField(
        "Client name",
        filters=[strip],
        validators=[DataRequired(message="Give the client a name, for example “Hotspot site”."), *NAME_RULES],
    )


class WholeShillingsField(IntegerField):
    """Whole shillings as people type them: "1500", "1,500" or "1 500"; anything else is explained."""

    def process_formdata(self, valuelist):
        if not valuelist or not valuelist[0].strip():
            self.data = None
            return
        text = re.sub(r"[\s,]", "", valuelist[0])
        if not re.fullmatch(r"[0-9]{1,9}", text):
            self.data = None
            raise ValueError("Enter the price in whole shillings, digits only (for example 1500).")
        self.data = int(text)


class PackageForm(FlaskForm):
    name = StringField(
        "Package name",
        filters=[strip],
        validators=[DataRequired(message="Give the package a name, for example “Daily 1 GB”."), *NAME_RULES],
    )
    price = WholeShillingsField(
        "Price (KES)",
        validators=[
            InputRequired(message="Enter the price in whole shillings."),
            NumberRange(
                1,
                isp.MAX_PRICE_KES,
                message=f"The price is a whole number of shillings from 1 to {isp.MAX_PRICE_KES:,}.",
            ),
        ],
    )


SECTIONS = {"clients": "isp/_clients.html", "packages": "isp/_packages.html"}


def _context(**extra) -> dict:
    merchant_id = current_user.merchant_id
    context = {
        "clients": isp.clients_of(merchant_id),
        "packages": isp.packages_of(merchant_id),
        "client_form": ClientForm(formdata=None),
        "package_form": PackageForm(formdata=None),
    }
    context.update(extra)
    return context


def _answer(section: str, status: int, message: str | None = None, **extra):
    """htmx gets the section it swaps; a plain request gets the page (422 with the errors), or
    after a change a redirect to it (303), the message flashed."""
    if is_htmx():
        body = render_template(SECTIONS[section], message=message, **_context(**extra))
        return body, status, {"Vary": "HX-Request"}
    if status == 422:
        return render_template("isp/index.html", **_context(**extra)), 422, {"Vary": "HX-Request"}
    if message:
        flash(message)
    return redirect(url_for("isp_pages.index"), 303)


@bp.get("/isp")
@login_required
def index():
    return render_template("isp/index.html", **_context())


@bp.post("/isp/clients")
@login_required
def create_client():
    form = ClientForm()
    if not form.validate_on_submit():
        return _answer("clients", 422, client_form=form)
    client = isp.create_client(current_user.merchant_id, form.name.data)
    return _answer("clients", 201, f"Client “{client.name}” added. Its client_id: {client.id}")


@bp.post("/isp/packages")
@login_required
def create_package():
    form = PackageForm()
    if not form.validate_on_submit():
        return _answer("packages", 422, package_form=form)
    package = isp.create_package(current_user.merchant_id, form.name.data, form.price.data)
    return _answer("packages", 201, f"Package “{package.name}” added.")


def _switch(model, section: str, ident, active: bool):
    row = model.get_for_merchant_or_404(current_user.merchant_id, str(ident))
    if row.active != active:
        isp.set_active(row, active)
    what = "Client" if model is IspClient else "Package"
    if active:
        return _answer(section, 200, f"{what} “{row.name}” is active again.")
    consequence = "its storefront's requests are now refused" if model is IspClient else "it can no longer be bought"
    return _answer(section, 200, f"{what} “{row.name}” deactivated: {consequence}.")


@bp.post("/isp/clients/<uuid:client_id>/deactivate")
@login_required
def deactivate_client(client_id):
    return _switch(IspClient, "clients", client_id, False)


@bp.post("/isp/clients/<uuid:client_id>/activate")
@login_required
def activate_client(client_id):
    return _switch(IspClient, "clients", client_id, True)


@bp.post("/isp/packages/<uuid:package_id>/deactivate")
@login_required
def deactivate_package(package_id):
    return _switch(InternetPackage, "packages", package_id, False)


@bp.post("/isp/packages/<uuid:package_id>/activate")
@login_required
def activate_package(package_id):
    return _switch(InternetPackage, "packages", package_id, True)
