"""The OpenAPI 3.1 document served at ``/openapi.json``, derived from the REST models."""

from __future__ import annotations

import functools
from typing import Any

from presence_server import __version__
from presence_server import rest_models as rm
from presence_server.openapi_audit import audit_paths, audit_schemas
from presence_server.openapi_portal import portal_paths, portal_schemas
from presence_server.openapi_projects import project_paths, project_schemas
from presence_server.platform_models import platform_paths, platform_schemas

__all__ = ["openapi_document"]

_ERROR = {"$ref": "#/components/schemas/Error"}
_REFUSALS = {
    "400": "invalid_payload",
    "401": "unauthenticated / token_expired",
    "403": "forbidden / municipality_not_allowed (a browser origin this token's municipality does not allow)",
    "404": "not_found (also for floors and rooms the caller may not see)",
    "409": "conflict",
    "413": "payload_too_large",
    "429": "rate_limited",
    "default": "other refusals by a domain rule (e.g. knock_required) answer 409 with their own code",
}


def _op(summary: str, *, body: type | None = None, ok: str = "200", auth: bool = True) -> dict[str, Any]:
    op: dict[str, Any] = {"summary": summary, "responses": {ok: {"description": "ok: true and the result"}}}
    if auth:
        op["security"] = [{"bearer": []}]
        for status, what in _REFUSALS.items():
            op["responses"][status] = {
                "description": what,
                "content": {"application/json": {"schema": _ERROR}},
            }
    if body is not None:
        op["requestBody"] = {
            "required": True,
            "content": {"application/json": {"schema": {"$ref": f"#/components/schemas/{body.__name__}"}}},
        }
    return op


@functools.cache
def openapi_document() -> dict[str, Any]:
    schemas: dict[str, Any] = {
        "Error": {
            "type": "object",
            "required": ["ok", "error"],
            "properties": {
                "ok": {"const": False},
                "error": {
                    "type": "object",
                    "required": ["code", "message"],
                    "properties": {"code": {"type": "string"}, "message": {"type": "string"}},
                },
            },
        }
    }
    for model in (rm.FloorCreate, rm.FloorPatch, rm.RoomCreate, rm.RoomPatch):
        schema = model.model_json_schema(ref_template="#/components/schemas/{model}")
        schemas.update(schema.pop("$defs", {}))
        schemas[model.__name__] = schema
    schemas.update(portal_schemas())
    schemas.update(audit_schemas())
    schemas.update(platform_schemas())
    schemas.update(project_schemas())
    floor = {"name": "floor_id", "in": "path", "required": True, "schema": {"type": "string"}}
    room = {"name": "room_id", "in": "path", "required": True, "schema": {"type": "string"}}
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "Virtual office presence server",
            "version": __version__,
            "description": "Campus administration and read access. Real-time presence is on Socket.IO: see docs/protocol.md.",
        },
        "components": {
            "schemas": schemas,
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer", "bearerFormat": "JWT"}},
        },
        "paths": {
            "/api/v1/campus": {"get": _op("Floors and rooms the caller may see")},
            "/api/v1/floors": {"post": _op("Create a floor (admin of the owner)", body=rm.FloorCreate, ok="201")},
            "/api/v1/floors/{floor_id}": {
                "parameters": [floor],
                "get": _op("Floor snapshot: rooms, doors, occupants, seq"),
                "patch": _op("Rename or resize a floor", body=rm.FloorPatch),
                "delete": _op("Delete a floor and its rooms"),
            },
            "/api/v1/floors/{floor_id}/rooms": {
                "parameters": [floor],
                "post": _op("Create a room", body=rm.RoomCreate, ok="201"),
            },
            "/api/v1/rooms/{room_id}": {
                "parameters": [room],
                "get": _op("A room and its occupants"),
                "patch": _op("Change a room (owners may change only the door)", body=rm.RoomPatch),
                "delete": _op("Delete a room; occupants move to the hallway"),
            },
            "/dev/token": {
                "get": {
                    **_op("Development mode only (404 otherwise): mint a token", auth=False),
                    "parameters": [
                        {"name": n, "in": "query", "required": n != "role", "schema": {"type": "string"}}
                        for n in ("municipality", "user", "name", "role")
                    ],
                }
            },
            **portal_paths(_op),
            **audit_paths(_op),
            **platform_paths(_op),
            **project_paths(_op),
            "/openapi.json": {"get": _op("This document", auth=False)},
            "/healthz": {"get": _op("Liveness", auth=False)},
            "/readyz": {"get": _op("Readiness (503 while starting or degraded)", auth=False)},
            "/metrics": {
                "get": _op(
                    "Prometheus metrics: here unless metrics.port moves them to a listener of their own;"
                    " Bearer metrics.token if one is set",
                    auth=False,
                )
            },
        },
    }
