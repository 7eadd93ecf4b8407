"""Fault switches shared by every simulator (DESIGN §6), read at the moment of use: a run-time
override kept in Redis (set through the JSON endpoint /sandbox/faults, shared by every process)
wins over the app's config (SANDBOX_FAULT_* from the environment, or app.config in tests)."""

import json
import logging
import math
import random
import time
from collections.abc import Callable

import redis
from flask import Blueprint, Response, current_app, jsonify, request
from pydantic import BaseModel, ConfigDict, create_model

from portal import openapi
from portal.config import Config
from portal.queueing import get_redis

log = logging.getLogger(__name__)

# name -> (type, default, meaning), from the typed settings: the meanings are the documentation
# (GET /sandbox/faults shows them).
SWITCHES: dict[str, tuple[type, object, str]] = {
    name: (field.annotation, field.default, field.description)
    for name, field in Config.model_fields.items()
    if name.startswith("SANDBOX_FAULT_") or name == "SANDBOX_CALLBACK_COPIES"
}
COUNTING = ("SANDBOX_FAULT_API_500", "SANDBOX_FAULT_API_TIMEOUT")
OVERRIDES = "sandbox:faults"
USED = "sandbox:faults:used:"  # + a counting switch's name: how many calls it has answered


class BadSwitch(ValueError):
    pass


def _parse(name: str, value):
    kind = SWITCHES[name][0]
    if kind is bool:
        if isinstance(value, str):
            return value.strip().lower() in {"1", "true", "yes", "on"}
        return bool(value)
    if kind is str:
        return "" if value is None else str(value)
    if isinstance(value, bool):
        raise ValueError(value)
    try:
        number = kind(value)
    except OverflowError:  # int(1e309)
        raise ValueError(value) from None
    if not math.isfinite(number) or number < 0:
        raise ValueError(value)
    return number


def _overrides() -> dict:
    try:
        raw = get_redis().hgetall(OVERRIDES)
    except redis.RedisError:
        log.warning("could not read the sandbox's fault overrides", exc_info=True)
        return {}
    return {k.decode(): json.loads(v) for k, v in raw.items()}


def current() -> dict:
    """Every switch's value now."""
    overrides = _overrides()
    values = {}
    for name, (_kind, default, _meaning) in SWITCHES.items():
        raw = overrides.get(name, current_app.config.get(name, default))
        try:
            values[name] = _parse(name, raw)
        except (TypeError, ValueError):
            log.warning("ignoring %s=%r", name, raw)
            values[name] = default
    return values


def get(name: str):
    return current()[name]


def override(values: dict) -> dict:
    """Sets run-time overrides (None removes one); a counting switch set again counts afresh."""
    parsed = {}
    for name, value in values.items():
        if name not in SWITCHES:
            raise BadSwitch(f"unknown switch {name}")
        try:
            parsed[name] = None if value is None else _parse(name, value)
        except (TypeError, ValueError):
            raise BadSwitch(f"{name} cannot be {value!r}") from None
    connection = get_redis()
    with connection.pipeline() as pipe:
        for name, value in parsed.items():
            if value is None:
                pipe.hdel(OVERRIDES, name)
            else:
                pipe.hset(OVERRIDES, name, json.dumps(value))
            if name in COUNTING:
                pipe.delete(USED + name)
        pipe.execute()
    return current()


def reset() -> dict:
    get_redis().delete(OVERRIDES, *(USED + name for name in COUNTING))
    return current()


def fires(values: dict, name: str) -> bool:
    """Whether the counting switch `name` (or its _RATE twin) applies to this call."""
    budget, rate = values[name], values[name + "_RATE"]
    if budget > 0:
        try:
            if get_redis().incr(USED + name) <= budget:
                return True
        except redis.RedisError:
            log.warning("could not count %s", name, exc_info=True)
    return rate > 0 and random.random() < rate


def _in_scope(path: str, prefixes: str) -> bool:
    wanted = [p.strip() for p in prefixes.split(",") if p.strip()]
    return not wanted or any(path.startswith(p) for p in wanted)


def install_api_faults(bp: Blueprint, render_error: Callable[[int, str], Response]) -> None:
    """Makes `bp`'s endpoints (a provider's API) answer with the API fault switches: a hang (in the
    request, as a provider that does not answer; then the call takes effect) or an HTTP 500."""

    @bp.before_request
    def _api_fault():
        values = current()
        if not (
            values["SANDBOX_FAULT_API_500"]
            or values["SANDBOX_FAULT_API_500_RATE"]
            or values["SANDBOX_FAULT_API_TIMEOUT"]
            or values["SANDBOX_FAULT_API_TIMEOUT_RATE"]
        ):
            return None
        if not _in_scope(request.path, values["SANDBOX_FAULT_API_PATHS"]):
            return None
        if fires(values, "SANDBOX_FAULT_API_TIMEOUT"):
            time.sleep(values["SANDBOX_FAULT_API_HANG"])  # the provider not answering: a request, not a job
        if fires(values, "SANDBOX_FAULT_API_500"):
            if values["SANDBOX_FAULT_API_500_BARE"]:
                return Response(
                    "<html><body><h1>500 Internal Server Error</h1></body></html>", 500, content_type="text/html"
                )
            return render_error(500, "Internal Server Error")
        return None


# -- the control endpoint ----------------------------------------------------------------------
bp = Blueprint("sandbox_faults", __name__, url_prefix="/sandbox/faults")
openapi.section(
    bp, "sandbox", "Provider simulators (sandbox mode only): the fault switches", responses={413: openapi.Answer(None)}
)


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


# The switchboard's shapes, made from SWITCHES: a switch added to the settings is documented too.
Changes = create_model(
    "FaultChanges",
    __config__=ConfigDict(extra="forbid", json_schema_extra={"description": "null removes an override"}),
    **{name: (kind | None, None) for name, (kind, _default, _meaning) in SWITCHES.items()},
)
Switch = create_model(
    "FaultSwitch",
    __base__=Strict,
    value=(bool | int | float | str, ...),
    default=(bool | int | float | str, ...),
    overridden=(bool, ...),
    meaning=(str | None, ...),
)
Switchboard = create_model("FaultSwitchboard", __base__=Strict, switches=(dict[str, Switch], ...))
Refused = create_model("FaultRefused", __base__=Strict, error=(str, ...))


def _described() -> dict:
    values = current()
    overrides = _overrides()
    return {
        "switches": {
            name: {"value": values[name], "default": default, "overridden": name in overrides, "meaning": meaning}
            for name, (_kind, default, meaning) in SWITCHES.items()
        }
    }


@openapi.operation("Every fault switch: its value, default and meaning", responses={200: Switchboard})
@bp.get("")
def show():
    return jsonify(_described())


@openapi.operation(
    "Set fault switches for every process (null removes an override)",
    body=Changes,
    responses={200: Switchboard, 400: Refused},
)
@bp.route("", methods=["POST", "PATCH"])
def change():
    """Body: {"SANDBOX_FAULT_API_500": 2, ...}; null removes an override."""
    body = request.get_json(silent=True)
    if not isinstance(body, dict):
        return jsonify(error="the body must be a JSON object of switch names and values"), 400
    try:
        override(body)
    except BadSwitch as exc:
        return jsonify(error=str(exc)), 400
    return jsonify(_described())


@openapi.operation("Clear every run-time override", responses={200: Switchboard})
@bp.delete("")
def clear():
    reset()
    return jsonify(_described())
