"""The REST edge of projects: routes over :mod:`presence_server.projects_api`."""

from __future__ import annotations

from aiohttp import web

from presence_server.projects_api import MemberAdd, ProjectCreate, ProjectPatch, create_project, list_projects, update_project
from presence_server.rest import authenticate, read_body
from presence_server.runtime import RUNTIME
from rooms.campus import CampusService
from rooms.errors import DomainError, ErrorCode
from rooms.project import Project

__all__ = ["install"]


async def _create(request: web.Request) -> web.Response:
    actor = (await authenticate(request)).actor
    body: ProjectCreate = await read_body(request, ProjectCreate)
    return web.json_response({"ok": True, **await create_project(_campus(request), actor, body)}, status=201)


async def _list(request: web.Request) -> web.Response:
    actor = (await authenticate(request)).actor
    return web.json_response({"ok": True, **list_projects(_campus(request), actor)})


async def _get(request: web.Request) -> web.Response:
    actor = (await authenticate(request)).actor
    campus = _campus(request)
    project = campus.visible_project(actor, request.match_info["project_id"])
    return web.json_response({"ok": True, "project": campus.project_dict(project)})


async def _patch(request: web.Request) -> web.Response:
    actor = (await authenticate(request)).actor
    body: ProjectPatch = await read_body(request, ProjectPatch)
    answer = await update_project(_campus(request), actor, request.match_info["project_id"], body)
    return web.json_response({"ok": True, **answer})


async def _delete(request: web.Request) -> web.Response:
    actor = (await authenticate(request)).actor
    project = await _campus(request).delete_project(actor, request.match_info["project_id"])
    return web.json_response({"ok": True, "project": project.to_dict()})


async def _add_member(request: web.Request) -> web.Response:
    actor = (await authenticate(request)).actor
    body: MemberAdd = await read_body(request, MemberAdd)
    campus = _campus(request)
    project: Project = await campus.add_member(
        actor,
        request.match_info["project_id"],
        person=body.person,
        municipality=body.municipality,
        coordinator=body.role == "coordinator",
    )
    return web.json_response({"ok": True, "project": campus.project_dict(project)})


async def _remove_member(request: web.Request) -> web.Response:
    actor = (await authenticate(request)).actor
    person, municipality = request.query.get("person"), request.query.get("municipality")
    if person is not None and "/" not in person:
        raise DomainError(ErrorCode.INVALID_PAYLOAD, "person: a person id 'municipality/user_id'", field="person")
    campus = _campus(request)
    project = await campus.remove_member(
        actor, request.match_info["project_id"], person=person, municipality=municipality
    )
    return web.json_response({"ok": True, "project": campus.project_dict(project)})


def _campus(request: web.Request) -> CampusService:
    return request.app[RUNTIME].campus


def install(app: web.Application) -> None:
    r = app.router
    r.add_post("/api/v1/projects", _create)
    r.add_get("/api/v1/projects", _list)
    r.add_get("/api/v1/projects/{project_id}", _get)
    r.add_patch("/api/v1/projects/{project_id}", _patch)
    r.add_delete("/api/v1/projects/{project_id}", _delete)
    r.add_post("/api/v1/projects/{project_id}/members", _add_member)
    r.add_delete("/api/v1/projects/{project_id}/members", _remove_member)
