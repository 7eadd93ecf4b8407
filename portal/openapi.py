"""The OpenAPI 3.1 document of every JSON route. A view declares its operation with
`@operation(...)`: the pydantic models that validate its body, query and headers, the models of
its answers by status, its credential. `document(app)` walks the URL map and builds the document
from those models' JSON schemas (shared schemas hoisted into components), so what is documented
is what is validated. It lives beside the layers, as dialects.py does: api/, webhooks/ and the
sandbox all declare their routes here, and none of them imports another."""

import json
import re
from dataclasses import dataclass, field
from http import HTTPStatus
from typing import Any

from flask import Blueprint, Flask
from pydantic import BaseModel
from pydantic.json_schema import models_json_schema
from werkzeug.routing import IntegerConverter, PathConverter, Rule, UUIDConverter

VERSION = "3.1.0"
REF = "#/components/schemas/{model}"
PUBLIC = "public"  # auth= for a route that needs no credential
SECURITY_SCHEMES = {
    "api_key": {
        "type": "http",
        "scheme": "bearer",
        "description": "A merchant's API key (portal: API keys, or `flask apikey create`)",
    },
    "station_key": {
        "type": "http",
        "scheme": "bearer",
        "description": "A water station's key (portal: Stations, or `flask station create`)",
    },
    "daraja_basic": {
        "type": "http",
        "scheme": "basic",
        "description": "The simulator's consumer key and secret, as Daraja's OAuth takes them",
    },
    "daraja_token": {
        "type": "http",
        "scheme": "bearer",
        "description": "An access token from the simulator's OAuth",
    },
    "paystack_secret_key": {
        "type": "http",
        "scheme": "bearer",
        "description": "A Paystack simulator integration's secret key (sk_test_...; `flask seed-demo` prints them)",
    },
    "at_api_key": {
        "type": "apiKey",
        "in": "header",
        "name": "apiKey",
        "description": "The Africa's Talking simulator's key (SANDBOX_AT_API_KEY), with the username sandbox",
    },
}
# auth= for the water routes a kiosk calls: a station's key, or a merchant's API key (either one)
STATION = ("station_key", "api_key")
BODY_METHODS = {"POST", "PUT", "PATCH"}


FORM = "application/x-www-form-urlencoded"


@dataclass(frozen=True)
class Raw:
    """A provider's request body: `model` is the shape the provider sends (in each of `content_types`),
    but any bytes are taken."""

    model: type[BaseModel]
    description: str = "Any bytes are stored as they arrived and acknowledged; this is the provider's shape."
    content_types: tuple[str, ...] = ("application/json",)


@dataclass(frozen=True)
class Form:
    """A form-encoded body (application/x-www-form-urlencoded) whose fields `model` validates."""

    model: type[BaseModel]


EMPTY = "empty"  # body= for a route that reads no body


@dataclass(frozen=True)
class Answer:
    """A documented answer: its model (None: not described further), content type and description."""

    model: type[BaseModel] | None
    description: str = ""
    content_type: str = "application/json"


@dataclass(frozen=True)
class Operation:
    summary: str
    responses: dict[int, Answer]
    body: type[BaseModel] | Raw | Form | str | None = None
    query: type[BaseModel] | None = None
    headers: type[BaseModel] | None = None
    path: type[BaseModel] | None = None
    auth: str | tuple[str, ...] | None = None  # None: the blueprint's; a tuple: any one of these
    tags: tuple[str, ...] = ()
    description: str = ""


@dataclass
class Section:
    """What every route of one blueprint shares: its tag, credential and common answers."""

    tag: str
    description: str
    auth: str | tuple[str, ...] = PUBLIC
    responses: dict[int, Answer] = field(default_factory=dict)


_SECTIONS: dict[str, Section] = {}


def _answer(value) -> Answer:
    return value if isinstance(value, Answer) else Answer(value)


def _schemes(auth: str | tuple[str, ...]) -> tuple[str, ...]:
    """The security schemes any one of which opens a route (none for a public one)."""
    return () if auth == PUBLIC else (auth,) if isinstance(auth, str) else auth


def _known(auth: str | tuple[str, ...]) -> None:
    if auth != PUBLIC and (not _schemes(auth) or not set(_schemes(auth)) <= set(SECURITY_SCHEMES)):
        raise ValueError(
            f"auth must be openapi.PUBLIC, one of {sorted(SECURITY_SCHEMES)} or a tuple of them, not {auth!r}"
        )


def section(
    bp: Blueprint, tag: str, description: str, auth: str | tuple[str, ...] = PUBLIC, responses: dict | None = None
) -> None:
    """Declares what `bp`'s routes share. `responses` are answers any of them may give (401 is
    dropped from public routes)."""
    _known(auth)
    _SECTIONS[bp.name] = Section(tag, description, auth, {s: _answer(a) for s, a in (responses or {}).items()})


def operation(
    summary: str,
    *,
    responses: dict,
    body: type[BaseModel] | Raw | Form | str | None = None,
    query: type[BaseModel] | None = None,
    headers: type[BaseModel] | None = None,
    path: type[BaseModel] | None = None,
    auth: str | tuple[str, ...] | None = None,
    tags: tuple[str, ...] = (),
    description: str = "",
):
    """Marks a view with its operation. `body` is the model that validates the JSON body, a
    `Raw(model)` for a provider's callback, `Form(model)` for a form body, or EMPTY; `responses`
    maps status codes to answer models (or Answer). The view must validate with the same models,
    so the two cannot drift."""
    if auth is not None:
        _known(auth)
    op = Operation(
        summary=summary,
        responses={s: _answer(a) for s, a in responses.items()},
        body=body,
        query=query,
        headers=headers,
        path=path,
        auth=auth,
        tags=tags,
        description=description,
    )

    def mark(view):
        view.openapi = op
        return view

    return mark


def operation_of(app: Flask, rule: Rule) -> Operation | None:
    return getattr(app.view_functions.get(rule.endpoint), "openapi", None)


def section_of(rule: Rule) -> Section | None:
    return _SECTIONS.get(rule.endpoint.rpartition(".")[0])


def methods_of(rule: Rule) -> list[str]:
    return sorted(rule.methods - {"HEAD", "OPTIONS"})


def openapi_path(rule: Rule) -> str:
    """/api/transactions/<int:transaction_id> as /api/transactions/{transaction_id}."""
    return _VARIABLE.sub(r"{\1}", rule.rule)


_VARIABLE = re.compile(r"<(?:[^:<>]+:)?([^<>:]+)>")


def _converter_schema(rule: Rule, name: str) -> dict:
    converter = rule._converters[name]
    if isinstance(converter, IntegerConverter):
        schema = {"type": "integer"}
        if not converter.signed or converter.min is not None:
            schema["minimum"] = converter.min if converter.min is not None else 0
        if converter.max is not None:
            schema["maximum"] = converter.max
        return schema
    if isinstance(converter, UUIDConverter):
        return {"type": "string", "format": "uuid"}
    if isinstance(converter, PathConverter):
        return {"type": "string", "minLength": 1}
    return {"type": "string", "minLength": 1, "pattern": "^[^/]+$"}


def document(app: Flask) -> dict:
    """The OpenAPI document of every route that declared its operation, built once per app."""
    cached = app.extensions.get("openapi")
    if cached is None:
        cached = app.extensions["openapi"] = _build(app)
    return cached


def _build(app: Flask) -> dict:
    described = []
    for rule in sorted(app.url_map.iter_rules(), key=lambda r: (r.rule, r.endpoint)):
        op = operation_of(app, rule)
        if op is not None:
            described.append((rule, op, section_of(rule)))

    pairs = []
    for _rule, op, sec in described:
        for model in (op.query, op.headers, op.path, op.body.model if isinstance(op.body, Raw | Form) else op.body):
            if isinstance(model, type):
                pairs.append((model, "validation"))
        for answer in [*op.responses.values(), *(sec.responses.values() if sec else ())]:
            if answer.model is not None:
                pairs.append((answer.model, "serialization"))
    pairs = list(dict.fromkeys(pairs))
    schemas, top = models_json_schema(pairs, ref_template=REF) if pairs else ({}, {})
    components = _without_null_defaults(top.get("$defs", {}))

    def ref(model, mode):
        return schemas[(model, mode)]

    paths: dict[str, dict] = {}
    used_ids: set[str] = set()
    tags: dict[str, str] = {}
    for rule, op, sec in described:
        methods = methods_of(rule)
        for method in methods:
            operation_id = rule.endpoint if len(methods) == 1 else f"{rule.endpoint}_{method.lower()}"
            while operation_id in used_ids:
                operation_id += "_"
            used_ids.add(operation_id)
            entry = _operation(rule, op, sec, method, operation_id, ref, components)
            paths.setdefault(openapi_path(rule), {})[method.lower()] = entry
        if sec is not None:
            tags.setdefault(sec.tag, sec.description)

    # Parameter models live on as parameters; their definitions go unless something refers to them.
    for model in {m for _r, op, _s in described for m in (op.query, op.headers, op.path) if m is not None}:
        name = ref(model, "validation")["$ref"].rsplit("/", 1)[-1]
        rest = {k: v for k, v in components.items() if k != name}
        if f'"{REF.format(model=name)}"' not in json.dumps([paths, rest]):
            components = rest

    return {
        "openapi": VERSION,
        "info": {
            "title": "M-Pesa merchant portal and payments gateway",
            "version": "1",
            "description": "Every JSON route this server answers: the documented APIs (checkout, gateway and the "
            "others), the provider callbacks and, in sandbox mode, the provider simulators. Generated from the "
            "models that validate the requests.",
        },
        "tags": [{"name": name, "description": text} for name, text in sorted(tags.items())],
        "paths": paths,
        "components": {"schemas": components, "securitySchemes": SECURITY_SCHEMES},
    }


def _properties(model: type[BaseModel], ref, components) -> tuple[dict, set]:
    """A parameter model's properties and required names, from its hoisted definition."""
    name = ref(model, "validation")["$ref"].rsplit("/", 1)[-1]
    definition = components[name]
    return definition.get("properties", {}), set(definition.get("required", ()))


def _operation(rule: Rule, op: Operation, sec: Section | None, method: str, operation_id: str, ref, components):
    auth = op.auth or (sec.auth if sec else PUBLIC)
    entry: dict[str, Any] = {"operationId": operation_id, "summary": op.summary}
    if op.description:
        entry["description"] = op.description
    entry["tags"] = list(op.tags) or ([sec.tag] if sec else [])

    parameters = []
    path_props, _ = _properties(op.path, ref, components) if op.path else ({}, set())
    for name in rule.arguments:
        schema = path_props.get(name) or _converter_schema(rule, name)
        parameters.append({"name": name, "in": "path", "required": True, "schema": _clean(schema)})
    for location, model in (("query", op.query), ("header", op.headers)):
        if model is None:
            continue
        props, required = _properties(model, ref, components)
        for name, schema in props.items():
            parameter = {"name": name, "in": location, "required": name in required, "schema": _clean(schema)}
            if schema.get("description"):
                parameter["description"] = schema["description"]
            parameters.append(parameter)
    if parameters:
        entry["parameters"] = parameters

    if method in BODY_METHODS and op.body not in (None, EMPTY):
        if isinstance(op.body, Raw):
            schema = ref(op.body.model, "validation")
            entry["requestBody"] = {
                "description": op.body.description,
                "required": False,
                "content": {media: {"schema": schema} for media in op.body.content_types},
            }
        elif isinstance(op.body, Form):
            entry["requestBody"] = {"required": True, "content": {FORM: {"schema": ref(op.body.model, "validation")}}}
        else:
            entry["requestBody"] = {
                "required": True,
                "content": {"application/json": {"schema": ref(op.body, "validation")}},
            }

    answers = dict(sec.responses) if sec else {}
    if auth == PUBLIC:
        answers.pop(401, None)
    answers.update(op.responses)
    entry["responses"] = {
        str(status): _response(status, answer, ref) for status, answer in sorted(answers.items()) if answer
    }
    entry["security"] = [{scheme: []} for scheme in _schemes(auth)]
    return entry


def _response(status: int, answer: Answer, ref) -> dict:
    out: dict[str, Any] = {"description": answer.description or HTTPStatus(status).phrase}
    if answer.model is not None:
        schema = ref(answer.model, "serialization")
    else:  # undescribed: anything for JSON, text otherwise
        schema = {} if answer.content_type == "application/json" else {"type": "string"}
    out["content"] = {answer.content_type: {"schema": schema}}
    return out


def _without_null_defaults(value):
    """Pydantic writes `"default": null` for every optional field, even where null is not a
    valid value (absent is what it means): dropped, so each default fits its schema."""
    if isinstance(value, dict):
        return {k: _without_null_defaults(v) for k, v in value.items() if not (k == "default" and v is None)}
    if isinstance(value, list):
        return [_without_null_defaults(v) for v in value]
    return value


def _clean(schema: dict) -> dict:
    """A parameter's schema: never null (an absent parameter is how "none" is said), its
    description on the parameter rather than here."""
    options = schema.get("anyOf")
    if options and {"type": "null"} in options and len(options) == 2:
        (kept,) = [o for o in options if o != {"type": "null"}]
        schema = {**{k: v for k, v in schema.items() if k != "anyOf"}, **kept}
    return {k: v for k, v in schema.items() if v is not None and k not in ("title", "description")}
