"""GET /api/docs: the OpenAPI document of every JSON route (built by portal/openapi.py from the
models that validate the requests); GET /api/docs/ui: the same, browsable, in Swagger UI,
vendored under static/swagger-ui (never from a CDN). Both public."""

from flask import Blueprint, current_app, jsonify, render_template
from pydantic import BaseModel, ConfigDict

from portal import openapi

bp = Blueprint("api_docs", __name__, url_prefix="/api/docs")
openapi.section(bp, "docs", "This document, as JSON and as a page")


class OpenApiDocument(BaseModel):
    model_config = ConfigDict(extra="allow")

    openapi: str
    info: dict
    paths: dict
    components: dict


@openapi.operation("This OpenAPI document", responses={200: OpenApiDocument})
@bp.get("")
def spec():
    return jsonify(openapi.document(current_app))


@openapi.operation(
    "This document as a browsable page (Swagger UI)",
    responses={200: openapi.Answer(None, "An HTML page", "text/html")},
)
@bp.get("/ui")
def ui():
    return render_template("api/docs.html")
