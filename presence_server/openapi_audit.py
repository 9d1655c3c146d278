"""The audit endpoint's part of the OpenAPI document (merged by :mod:`presence_server.openapi`)."""

from __future__ import annotations

from typing import Any, Callable

from presence_server.audit_models import NDJSON, AuditAnswer, AuditEntryModel, AuditQueryParams

__all__ = ["audit_schemas", "audit_paths"]


def audit_schemas() -> dict[str, Any]:
    schemas: dict[str, Any] = {}
    for model in (AuditAnswer, AuditEntryModel):
        schema = model.model_json_schema(ref_template="#/components/schemas/{model}")
        schemas.update(schema.pop("$defs", {}))
        schemas[model.__name__] = schema
    return schemas


def audit_paths(op: Callable[..., dict[str, Any]]) -> dict[str, Any]:
    """``op`` is the core document's operation builder (security and refusals)."""
    get = op(
        "Audit trail of the caller's municipality (admins only; staff and guests: 403 forbidden): "
        "administrative changes to floors and rooms it may administer, and knock admissions there, "
        "oldest first. Never movements, status changes or calls."
    )
    get["parameters"] = [
        {"name": name, "in": "query", "required": False, "schema": schema}
        for name, schema in AuditQueryParams.model_json_schema()["properties"].items()
    ]
    get["responses"]["200"]["content"] = {
        "application/json": {"schema": {"$ref": "#/components/schemas/AuditAnswer"}},
        NDJSON: {"schema": {"$ref": "#/components/schemas/AuditEntryModel"},
                 "description": "One entry per line (Accept: application/x-ndjson or ?format=jsonl)."},
    }
    return {"/api/v1/audit": {"get": get}}
