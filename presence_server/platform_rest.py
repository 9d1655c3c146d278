"""Platform administration over HTTP: municipalities and cooperations at runtime.

Endpoints (docs/onboarding.md, docs/rest.md), all for the persons listed in
``auth.platform_admins`` only (``forbidden`` for anyone else, guests included):

* ``GET  /api/v1/platform/municipalities`` — every municipality, without secrets;
* ``POST /api/v1/platform/municipalities`` — add one: id, name, identity provider
  settings (``auth``) and browser ``origins``; 201;
* ``PATCH /api/v1/platform/municipalities/{id}`` — change name, ``auth`` or ``origins``
  of one added at runtime (configured ones are changed in the file: ``conflict``);
* ``GET  /api/v1/platform/cooperations``, ``POST`` — list, add (201);
* ``PATCH /api/v1/platform/cooperations/{id}`` — rename;
* ``PUT  /api/v1/platform/cooperations/{id}/members`` — set the member list;
* ``POST /api/v1/platform/cooperations/{id}/members`` ``{"municipality": ...}`` — add one;
* ``DELETE /api/v1/platform/cooperations/{id}/members/{municipality}`` — remove one.

:func:`install` builds the :class:`~presence_server.tenants.service.TenantService`
(on the tenant store the backends chose) and the
:class:`~presence_server.tenants.platform.PlatformService`, adds the routes and
owns their start and stop.
"""

from __future__ import annotations

from typing import Any, AsyncIterator, Final

from aiohttp import web
from pydantic import BaseModel, ValidationError

from presence_server.messages import validation_error
from presence_server.platform_models import (
    CooperationCreate,
    CooperationPatch,
    MemberAdd,
    MembersPut,
    MunicipalityCreate,
    MunicipalityPatch,
)
from presence_server.rest import authenticate
from presence_server.runtime import RUNTIME
from presence_server.tenants.platform import PlatformService
from presence_server.tenants.service import TenantService

__all__ = ["install", "PLATFORM", "TENANTS"]

PLATFORM: Final = web.AppKey("platform", PlatformService)
TENANTS: Final = web.AppKey("tenants", TenantService)

async def _body(request: web.Request, model: type[BaseModel]) -> Any:
    raw = await request.read()
    try:
        return model.model_validate_json(raw or b"{}")
    except ValidationError as exc:
        raise validation_error(exc) from None


async def _admin(request: web.Request) -> tuple[PlatformService, Any]:
    """The platform service and the verified caller, refused unless a platform admin."""
    actor = (await authenticate(request)).actor
    platform = request.app[PLATFORM]
    platform.require_platform_admin(actor)
    return platform, actor


def _ok(status: int = 200, **data: Any) -> web.Response:
    return web.json_response({"ok": True, **data}, status=status)


async def list_municipalities(request: web.Request) -> web.Response:
    platform, actor = await _admin(request)
    return _ok(municipalities=platform.municipalities(actor))


async def add_municipality(request: web.Request) -> web.Response:
    platform, actor = await _admin(request)
    body: MunicipalityCreate = await _body(request, MunicipalityCreate)
    view = await platform.add_municipality(actor, body.id, body.name, body.auth.to_settings(body.origins))
    return _ok(201, municipality=view)


async def patch_municipality(request: web.Request) -> web.Response:
    platform, actor = await _admin(request)
    body: MunicipalityPatch = await _body(request, MunicipalityPatch)
    origins = body.origins
    auth = None if body.auth is None else body.auth.to_settings(origins or [])
    view = await platform.update_municipality(
        actor, request.match_info["municipality_id"], name=body.name, auth=auth, origins=origins
    )
    return _ok(municipality=view)


async def list_cooperations(request: web.Request) -> web.Response:
    platform, actor = await _admin(request)
    return _ok(cooperations=platform.cooperations(actor))


async def add_cooperation(request: web.Request) -> web.Response:
    platform, actor = await _admin(request)
    body: CooperationCreate = await _body(request, CooperationCreate)
    return _ok(201, cooperation=await platform.add_cooperation(actor, body.id, body.name, body.members))


async def patch_cooperation(request: web.Request) -> web.Response:
    platform, actor = await _admin(request)
    body: CooperationPatch = await _body(request, CooperationPatch)
    return _ok(cooperation=await platform.change_cooperation(actor, request.match_info["cooperation_id"], name=body.name))


async def put_members(request: web.Request) -> web.Response:
    platform, actor = await _admin(request)
    body: MembersPut = await _body(request, MembersPut)
    cid = request.match_info["cooperation_id"]
    return _ok(cooperation=await platform.change_cooperation(actor, cid, members=body.members))


async def add_member(request: web.Request) -> web.Response:
    platform, actor = await _admin(request)
    body: MemberAdd = await _body(request, MemberAdd)
    cid = request.match_info["cooperation_id"]
    return _ok(cooperation=await platform.change_cooperation(actor, cid, add=[body.municipality]))


async def remove_member(request: web.Request) -> web.Response:
    platform, actor = await _admin(request)
    cid, mid = request.match_info["cooperation_id"], request.match_info["municipality_id"]
    return _ok(cooperation=await platform.change_cooperation(actor, cid, remove=[mid]))


def install(app: web.Application) -> None:
    """Add platform administration to an app built by :func:`presence_server.app.build_app`."""
    rt = app[RUNTIME]
    settings = rt.settings
    tenants = TenantService(
        rt.backends.tenants,
        verifier=rt.verifier,
        origins=rt.origins,
        campus=rt.campus,
        refresh_seconds=settings.auth.runtime_refresh_seconds if rt.backends.cluster is not None else None,
    )
    app[TENANTS] = rt.tenants = tenants
    app[PLATFORM] = PlatformService(settings, tenants, rt.campus, rt.verifier, audit=rt.audit)
    app.cleanup_ctx.append(_lifecycle)
    r = app.router
    base = "/api/v1/platform"
    r.add_get(f"{base}/municipalities", list_municipalities)
    r.add_post(f"{base}/municipalities", add_municipality)
    r.add_patch(f"{base}/municipalities/{{municipality_id}}", patch_municipality)
    r.add_get(f"{base}/cooperations", list_cooperations)
    r.add_post(f"{base}/cooperations", add_cooperation)
    r.add_patch(f"{base}/cooperations/{{cooperation_id}}", patch_cooperation)
    r.add_put(f"{base}/cooperations/{{cooperation_id}}/members", put_members)
    r.add_post(f"{base}/cooperations/{{cooperation_id}}/members", add_member)
    r.add_delete(f"{base}/cooperations/{{cooperation_id}}/members/{{municipality_id}}", remove_member)


async def _lifecycle(app: web.Application) -> AsyncIterator[None]:
    # Runs after the core lifecycle opened the backends and started the campus,
    # before the server takes requests: runtime municipalities verify from the start.
    tenants = app[TENANTS]
    await tenants.start()
    try:
        yield
    finally:
        await tenants.close()
