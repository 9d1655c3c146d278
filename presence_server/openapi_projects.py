"""Projects and invitations in the OpenAPI document (merged by :mod:`presence_server.openapi`)."""

from __future__ import annotations

from typing import Any, Callable

from presence_server.invitations_api import InvitationCreate, InvitationRedeem
from presence_server.projects_api import MemberAdd, ProjectCreate, ProjectPatch

__all__ = ["project_schemas", "project_paths"]


def project_schemas() -> dict[str, Any]:
    schemas: dict[str, Any] = {}
    for model in (ProjectCreate, ProjectPatch, MemberAdd, InvitationCreate, InvitationRedeem):
        schema = model.model_json_schema(ref_template="#/components/schemas/{model}")
        schemas.update(schema.pop("$defs", {}))
        schemas[model.__name__] = schema
    return schemas


def project_paths(op: Callable[..., dict[str, Any]]) -> dict[str, Any]:
    """``op`` is the core document's operation builder (security and refusals)."""
    remove = op("Remove a person (?person=town/user) or a municipality (?municipality=town) (coordinators)")
    remove["parameters"] = [
        {"name": name, "in": "query", "required": False, "schema": {"type": "string"}}
        for name in ("person", "municipality")
    ]
    return {
        "/api/v1/projects": {
            "post": op("Create a project; the caller becomes its coordinator (docs/projects.md)",
                       body=ProjectCreate, ok="201"),
            "get": op("The caller's projects"),
        },
        "/api/v1/projects/{project_id}": {
            "get": op("A project (members; others: 404)"),
            "patch": op("Change a project: name, purpose, end, membership lists (coordinators)", body=ProjectPatch),
            "delete": op("End a project now: its floor and rooms go, its guests' sessions end (coordinators)"),
        },
        "/api/v1/projects/{project_id}/members": {
            "post": op("Add a person (member or coordinator) or a municipality (coordinators)", body=MemberAdd),
            "delete": remove,
        },
        "/api/v1/projects/{project_id}/audit": {
            "get": op("The project's audit trail, as /api/v1/audit (coordinators)"),
        },
        "/api/v1/projects/{project_id}/invitations": {
            "post": op("Create an invitation link (coordinators); the code is shown once", body=InvitationCreate,
                       ok="201"),
            "get": op("The project's invitations with their use counts (coordinators)"),
        },
        "/api/v1/projects/{project_id}/invitations/{invitation_id}": {
            "delete": op("Revoke an invitation: its guests' sessions end on every node (coordinators)"),
        },
        "/api/v1/invitations/redeem": {
            "post": op("Redeem a link's code for a guest token confined to the project (no token; 410 when "
                       "revoked, expired or used up)", body=InvitationRedeem, auth=False),
        },
    }  # fmt: skip
