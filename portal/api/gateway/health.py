"""GET /api/health: the database and Redis, in the gateway's and the water document's shape.
Public, and never rate-limited (a view named `health` is exempt from every limit)."""

from flask import jsonify
from sqlalchemy import text

from portal import openapi
from portal.api.gateway import bp, schemas
from portal.extensions import db
from portal.queueing import get_redis
from portal.timeutil import iso_z, utcnow


@openapi.operation(
    "The database and Redis: reachable or not (never rate-limited)",
    auth=openapi.PUBLIC,
    responses={200: schemas.GatewayHealthy, 503: schemas.GatewayUnhealthy},
)
@bp.get("/health")
def health():
    try:
        db.session.execute(text("SELECT 1"))
        database = "connected"
    except Exception:  # any failure to reach the database is what this endpoint reports
        db.session.rollback()
        database = "disconnected"
    try:
        get_redis().ping()
        redis = "connected"
    except Exception:  # the same for Redis
        redis = "disconnected"
    healthy = database == redis == "connected"
    data = {
        "status": "healthy" if healthy else "unhealthy",
        "database": database,
        "redis": redis,
        "timestamp": iso_z(utcnow()),
    }
    if healthy:
        return jsonify(success=True, data=data)
    body = {"success": False, "message": "A dependency is unreachable", "error": "SERVICE_UNAVAILABLE", "data": data}
    return jsonify(body), 503
