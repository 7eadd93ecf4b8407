"""Suite-wide OpenAPI guard: GET /api/docs validates as OpenAPI 3.1, and every JSON route in the
URL map (the fuzz guard's table of JSON blueprints) is in it, every method, with its request
model, its path parameters, its credential and a model for each answer. A route added without
its @openapi.operation fails here, so no route escapes the document."""

import re

import pytest
from flask import Blueprint, Flask
from openapi_spec_validator import validate
from pydantic import BaseModel

from portal import openapi
from tests.guards.test_fuzz import JSON_BLUEPRINTS, NOT_JSON, json_rules

SANDBOX_PREFIX = "/sandbox/"


def problems(app: Flask, rules, doc: dict) -> list[str]:
    """What keeps each rule from being fully described, in words."""
    found = []
    for rule in rules:
        where = f"{rule.rule} ({rule.endpoint})"
        op = openapi.operation_of(app, rule)
        if op is None:
            found.append(f"{where}: no @openapi.operation on its view")
            continue
        if openapi.section_of(rule) is None:
            found.append(f"{where}: its blueprint declares no openapi.section (tag, credential, common answers)")
        for method in openapi.methods_of(rule):
            entry = doc["paths"].get(openapi.openapi_path(rule), {}).get(method.lower())
            if entry is None:
                found.append(f"{where} {method}: not in the document")
                continue
            if method in openapi.BODY_METHODS:
                if op.body is None:
                    found.append(
                        f"{where} {method}: no request model (body=Model, openapi.Raw(Model) or openapi.EMPTY)"
                    )
                elif op.body != openapi.EMPTY and "requestBody" not in entry:
                    found.append(f"{where} {method}: its request model is not in the document")
            in_path = {p["name"] for p in entry.get("parameters", []) if p["in"] == "path"}
            if in_path != set(rule.arguments):
                found.append(f"{where} {method}: path parameters {sorted(in_path)} != {sorted(rule.arguments)}")
            answers = entry["responses"]
            if not any(code.startswith("2") for code in answers):
                found.append(f"{where} {method}: no successful answer documented")
            for code, answer in answers.items():
                for media, content in answer.get("content", {}).items():
                    if code.startswith("2") and media == "application/json" and "$ref" not in content["schema"]:
                        found.append(f"{where} {method}: its {code} answer has no model")
            if rule.rule.startswith(SANDBOX_PREFIX) and "sandbox" not in entry["tags"]:
                found.append(f"{where} {method}: a simulator route not tagged 'sandbox'")
    return found


def test_the_document_is_public_json_and_valid_openapi(client):
    answer = client.get("/api/docs")
    assert answer.status_code == 200 and answer.is_json
    doc = answer.get_json()
    validate(doc)  # raises on any departure from the OpenAPI 3.1 schema
    assert doc["openapi"] == "3.1.0"
    assert {"api_key", "daraja_token"} <= set(doc["components"]["securitySchemes"])


def test_every_json_route_is_in_the_document_with_its_models(app):
    rules = json_rules(app)
    assert len(rules) >= 15
    assert not problems(app, rules, openapi.document(app))


def test_the_guard_names_a_route_that_is_missing_or_has_no_request_model():
    """The check above can fail: a blueprint with one route undocumented and one POST that
    declares no body is refused with both named."""
    bp = Blueprint("probe", __name__)

    class Answer(BaseModel):
        ok: bool

    @bp.get("/forgotten/<int:item>")
    def forgotten(item):
        return {}

    @openapi.operation("A POST without its body", responses={200: Answer})
    @bp.post("/bodiless")
    def bodiless():
        return {}

    app = Flask(__name__)
    app.register_blueprint(bp)
    rules = [r for r in app.url_map.iter_rules() if r.endpoint.startswith("probe.")]
    found = problems(app, rules, openapi._build(app))
    assert any(re.match(r"/forgotten/<int:item> \(probe.forgotten\): no @openapi.operation", p) for p in found)
    assert any("/bodiless" in p and "no request model" in p for p in found)
    assert any("/bodiless" in p and "no openapi.section" in p for p in found)


def test_the_document_says_what_the_models_validate(app):
    doc = openapi.document(app)
    initiate = doc["paths"]["/initiate_payment"]["post"]
    body = initiate["requestBody"]["content"]["application/json"]["schema"]["$ref"].rsplit("/", 1)[-1]
    schema = doc["components"]["schemas"][body]
    assert schema["required"] == ["phone", "amount"]
    amount = schema["properties"]["amount"]
    assert (amount["type"], amount["minimum"], amount["maximum"]) == ("integer", 1, 70_000)
    assert schema["properties"]["phone"]["type"] == "string"
    assert [p["name"] for p in initiate["parameters"]] == ["Idempotency-Key"]
    assert initiate["security"] == [{"api_key": []}]
    listing = doc["paths"]["/api/transactions"]["get"]
    named = {p["name"]: p["schema"] for p in listing["parameters"]}
    assert named["type"]["enum"] == ["STK_PUSH", "C2B", "B2C"]
    assert named["limit"] == {"type": "integer", "minimum": 1, "maximum": 100, "default": 20}
    one = doc["paths"]["/api/transactions/{transaction_id}"]["get"]
    row_id = {"type": "integer", "minimum": 0, "maximum": 2**31 - 1}  # a row id: the database's integer
    assert one["parameters"][0] == {"name": "transaction_id", "in": "path", "required": True, "schema": row_id}
    # provider callbacks: no credential, Daraja's shape, always acknowledged
    callback = doc["paths"]["/api/mpesa/callback/stk"]["post"]
    assert callback["security"] == [] and callback["tags"] == ["provider callbacks"]
    assert callback["requestBody"]["required"] is False
    assert doc["paths"]["/api/health"]["get"]["security"] == []


@pytest.mark.parametrize("blueprint", sorted(NOT_JSON - {""}))
def test_pages_are_not_in_the_document(app, blueprint):
    """Portal pages, the virtual phone and static files are for browsers, not API clients."""
    doc = openapi.document(app)
    pages = [r for r in app.url_map.iter_rules() if r.endpoint.rpartition(".")[0] == blueprint]
    assert pages and not any(openapi.openapi_path(r) in doc["paths"] for r in pages)
    assert blueprint not in JSON_BLUEPRINTS


def test_the_browsable_page_loads_only_vendored_files(client):
    page = client.get("/api/docs/ui")
    assert page.status_code == 200 and page.mimetype == "text/html"
    html = page.get_data(as_text=True)
    sources = re.findall(r'(?:src|href)="([^"]+)"', html)
    assert sources and all(s.startswith("/static/") for s in sources), sources
    for source in (*sources, "/static/swagger-ui/LICENSE"):
        with client.get(source) as answer:  # closes the file a static answer streams from
            assert answer.status_code == 200, source
