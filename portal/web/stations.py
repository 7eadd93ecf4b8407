"""Portal views for water stations: list them, add one (its key shown once), edit one, rotate its
key (after a confirmation step; the new key shown once), disable or enable it, and see what it
dispensed lately. Every query goes through the current merchant; another merchant's station is a 404."""

from flask import Blueprint, flash, redirect, render_template, url_for
from flask_login import current_user, login_required
from flask_wtf import FlaskForm
from wtforms import StringField
from wtforms.validators import DataRequired, InputRequired

from portal.models import Station
from portal.services import stations
from portal.web.forms import WholeNumberField, strip
from portal.web.htmx import is_htmx

bp = Blueprint("stations", __name__)
NO_STORE = {"Cache-Control": "no-store"}  # an answer carrying a key in clear is never kept


class StationForm(FlaskForm):
    """Read as typed here; what may be stored is the stations service's to say."""

    name = StringField(
        "Name", filters=[strip], validators=[DataRequired("Give the station a name, for example “Kilimani kiosk”.")]
    )
    location = StringField("Location (optional)", filters=[strip])
    pulses_per_liter = WholeNumberField(
        "Pulses per liter",
        [InputRequired("Enter the pulses its flow meter gives per liter (1000 if you are not sure).")],
        default=stations.DEFAULT_PULSES_PER_LITER,
        unreadable="Enter the pulses per liter as a whole number, digits only (for example 1000).",
    )


class NewStationForm(StationForm):
    code = StringField(
        "Station code", filters=[strip], validators=[DataRequired("Give the station a code, for example STATION001.")]
    )


def _station(station_id: int) -> Station:
    return Station.get_for_merchant_or_404(current_user.merchant_id, station_id)


def _answer(body: str, status: int = 200, headers: dict | None = None):
    return body, status, {"Vary": "HX-Request", **(headers or {})}


# -- the list ------------------------------------------------------------------------------
def _list_answer(status: int, *, form: NewStationForm | None = None, headers: dict | None = None, **extra):
    """htmx gets the form partial (and after a change the list, out of band); a plain request the page."""
    context = {
        "form": form or NewStationForm(formdata=None),
        "stations": stations.stations_of(current_user.merchant_id),
        **extra,
    }
    if not is_htmx():
        return _answer(render_template("stations/index.html", **context), status, headers)
    body = render_template("stations/_create.html", **context)
    if status == 201:
        body += render_template("stations/_list.html", oob=True, **context)
    return _answer(body, status, headers)


@bp.get("/stations")
@login_required
def index():
    return _list_answer(200)


@bp.post("/stations")
@login_required
def create():
    form = NewStationForm()
    if form.validate_on_submit():
        data = form.data
        try:
            station, key = stations.create_station(
                current_user.merchant_id, data["code"], data["name"], data["location"], data["pulses_per_liter"]
            )
        except stations.StationInputError as exc:
            form[exc.field].errors.append(str(exc))
        else:
            # No redirect: the key exists only in this answer, so a plain POST renders the page itself.
            return _list_answer(201, headers=NO_STORE, new_key=key, new_station=station)
    return _list_answer(422, form=form)


# -- one station -----------------------------------------------------------------------------
def _detail_page(station: Station, status: int = 200, headers: dict | None = None, **extra):
    context = {
        "station": station,
        "form": StationForm(formdata=None, obj=station),
        "dispenses": stations.recent_dispenses(station),
        **extra,
    }
    return _answer(render_template("stations/detail.html", **context), status, headers)


def _access_answer(station: Station, status: int = 200, headers: dict | None = None, **extra):
    """The key and status section for htmx; the whole page for a plain request."""
    if is_htmx():
        return _answer(render_template("stations/_access.html", station=station, **extra), status, headers)
    return _detail_page(station, status, headers, **extra)


@bp.get("/stations/<int:station_id>")
@login_required
def detail(station_id: int):
    return _detail_page(_station(station_id))


@bp.post("/stations/<int:station_id>")
@login_required
def edit(station_id: int):
    station = _station(station_id)
    form = StationForm()
    if form.validate_on_submit():
        try:
            stations.update_station(
                station, name=form.name.data, location=form.location.data, pulses_per_liter=form.pulses_per_liter.data
            )
        except stations.StationInputError as exc:
            form[exc.field].errors.append(str(exc))
        else:
            message = f"Station {station.code} saved."
            if not is_htmx():
                flash(message)
                return redirect(url_for("stations.detail", station_id=station.id), 303)
            fresh = StationForm(formdata=None, obj=station)
            body = render_template("stations/_edit.html", station=station, form=fresh, message=message)
            body += render_template("stations/_title.html", station=station, oob=True)  # the name in the heading
            return _answer(body)
    if is_htmx():
        return _answer(render_template("stations/_edit.html", station=station, form=form), 422)
    return _detail_page(station, 422, form=form)


@bp.get("/stations/<int:station_id>/rotate")
@login_required
def confirm_rotation(station_id: int):
    """The confirmation step: nothing changes until its form is sent."""
    return _access_answer(_station(station_id), confirming=True)


@bp.post("/stations/<int:station_id>/rotate")
@login_required
def rotate(station_id: int):
    station = _station(station_id)
    try:
        key = stations.rotate_key(station)
    except stations.StationChanged as exc:
        return _access_answer(station, message=f"{exc} Its new key was shown there; rotate again to replace it.")
    # No redirect, as for a new station: the key exists only in this answer.
    return _access_answer(station, headers=NO_STORE, new_key=key)


def _switch(station_id: int, active: bool):
    station = _station(station_id)
    if station.active != active:
        stations.set_active(station, active)
    if active:
        message = f"Station {station.code} enabled: its key works again."
    else:
        message = f"Station {station.code} disabled: requests with its key are refused until you enable it."
    if is_htmx():
        return _access_answer(station, message=message)
    flash(message)
    return redirect(url_for("stations.detail", station_id=station.id), 303)


@bp.post("/stations/<int:station_id>/disable")
@login_required
def disable(station_id: int):
    return _switch(station_id, False)


@bp.post("/stations/<int:station_id>/enable")
@login_required
def enable(station_id: int):
    return _switch(station_id, True)
