"""The portal API over HTTP, and the wiring of the portal features into the app.

Endpoints (docs/rest.md, docs/portal.md):

* ``GET /api/v1/floors/{floor_id}/occupancy`` — who is in which room;
* ``GET /api/v1/municipalities/{municipality_id}/users/{user_id}/badge`` — one
  person's presence (``?format=svg`` for an image). A user is named by
  municipality *and* user id: token subjects are chosen by each town's
  identity provider and need not be unique across towns;
* ``GET /api/v1/people/search`` — the specialist finder (``scope=platform``:
  beyond the cooperation, docs/portal.md);
* ``GET``/``PUT /api/v1/me/published-skills`` — the caller's platform opt-in
  (also the socket event ``profile.publish``).

:func:`install` builds the :class:`~presence_server.directory.service.DirectoryService`
(on the directory store the backends chose), the
:class:`~presence_server.portal.PortalService` and the webhook dispatcher,
hooks them to presence, outbox and knocks, lets calls ring platform-published
people, adds the routes and the ``profile.publish`` event, and owns their start
and stop.
"""

from __future__ import annotations

from typing import Any, AsyncIterator, Final

from aiohttp import web
from pydantic import BaseModel, ValidationError

from presence_server import portal_metrics as pm
from presence_server import rest_models as rm
from presence_server.badge_svg import SVG_HEADERS, render_badge
from presence_server.cors import ORIGIN_RULES, OriginRules
from presence_server import messages as m
from presence_server.directory.service import DirectoryService
from presence_server.gateway import Session
from presence_server.messages import validation_error
from presence_server.portal import PortalService
from presence_server.rest import authenticate
from presence_server.runtime import RUNTIME
from presence_server.webhooks import WebhookDispatcher
from rooms.actors import Actor
from rooms.errors import DomainError, ErrorCode
from rooms.people import SearchCriteria

__all__ = ["install", "PORTAL", "DIRECTORY", "WEBHOOKS"]

PORTAL: Final = web.AppKey("portal", PortalService)
DIRECTORY: Final = web.AppKey("directory", DirectoryService)
WEBHOOKS: Final = web.AppKey("webhooks", WebhookDispatcher)


def _lang(request: web.Request) -> str:
    return "de" if request.headers.get("Accept-Language", "").lower().startswith("de") else "en"


def _query(request: web.Request, model: type[BaseModel]) -> Any:
    try:
        return model.model_validate(dict(request.query))
    except ValidationError as exc:
        raise validation_error(exc) from None


def _ok(**data: Any) -> web.Response:
    return web.json_response({"ok": True, **data})


async def occupancy(request: web.Request) -> web.Response:
    actor = (await authenticate(request)).actor
    result = await request.app[PORTAL].occupancy(actor, request.match_info["floor_id"])
    pm.PORTAL_REQUESTS.labels("occupancy").inc()
    return _ok(**result)


async def badge(request: web.Request) -> web.Response:
    actor = (await authenticate(request)).actor
    query: rm.BadgeQuery = _query(request, rm.BadgeQuery)
    pm.PORTAL_REQUESTS.labels("badge").inc()
    municipality_id, user_id = request.match_info["municipality_id"], request.match_info["user_id"]
    if query.format == "json":
        return _ok(badge=await request.app[PORTAL].badge(actor, municipality_id, user_id))
    try:
        card: dict[str, Any] | None = await request.app[PORTAL].badge(actor, municipality_id, user_id)
        status = 200
    except DomainError as exc:
        if exc.code is not ErrorCode.NOT_FOUND:
            raise
        card, status = None, 404  # the same neutral image for unknown and invisible people
    return web.Response(text=render_badge(card, _lang(request)), status=status, headers=SVG_HEADERS)


async def people_search(request: web.Request) -> web.Response:
    actor = (await authenticate(request)).actor
    query: rm.PeopleSearchQuery = _query(request, rm.PeopleSearchQuery)
    criteria = SearchCriteria.build(query.q, query.skill, query.department, query.job_title)
    results = await request.app[PORTAL].search(actor, criteria, limit=query.limit, scope=query.scope)
    pm.PORTAL_REQUESTS.labels("people_search_platform" if query.scope == "platform" else "people_search").inc()
    return _ok(results=results)


def _count_optin(municipality: str, published: list[str]) -> None:
    pm.PLATFORM_OPTINS.labels(municipality, "published" if published else "withdrawn").inc()


async def _published_answer(directory: DirectoryService, actor: Actor) -> dict[str, Any]:
    return {"published": await directory.published_of(actor), "publishable": directory.publishable(actor)}


async def published_skills(request: web.Request) -> web.Response:
    actor = (await authenticate(request)).actor
    pm.PORTAL_REQUESTS.labels("published_skills").inc()
    return _ok(**await _published_answer(request.app[DIRECTORY], actor))


async def publish_skills(request: web.Request) -> web.Response:
    actor = (await authenticate(request)).actor
    try:
        body = rm.PublishedSkillsBody.model_validate_json(await request.read() or b"{}")
    except ValidationError as exc:
        raise validation_error(exc) from None
    directory = request.app[DIRECTORY]
    _count_optin(actor.municipality_id, await directory.publish(actor, body.skills))
    pm.PORTAL_REQUESTS.labels("publish_skills").inc()
    return _ok(**await _published_answer(directory, actor))


def install(app: web.Application) -> None:
    """Add the portal features to an app built by :func:`presence_server.app.build_app`."""
    rt = app[RUNTIME]
    settings = rt.settings
    if ORIGIN_RULES not in app:  # build_app sets the shared rules (runtime municipalities join them)
        app[ORIGIN_RULES] = OriginRules.from_settings(settings)
    app[DIRECTORY] = directory = DirectoryService(
        rt.presence,
        rt.backends.directory,
        retention_days=settings.portal.directory_retention_days,
        online_ttl=settings.auth.max_token_ttl_seconds + settings.presence.grace_seconds,
        publish_skills={mid: town.directory.publish_skills for mid, town in settings.auth.municipalities.items()},
    )
    app[PORTAL] = PortalService(rt.presence, rt.calls, directory)
    rt.calls.reachable_beyond_floors(directory.is_platform_visible)

    async def profile_publish(session: Session, msg: m.ProfilePublish) -> dict[str, Any]:
        published = await directory.publish(session.actor, msg.skills)
        _count_optin(session.actor.municipality_id, published)
        return {"published": published}

    rt.gateway.add_event("profile.publish", m.ProfilePublish, profile_publish)
    webhooks = WebhookDispatcher.from_settings(settings, rt.campus)
    app[WEBHOOKS] = webhooks
    rt.outbox.add_observer(webhooks.on_diffs)
    rt.knocks.add_observer(webhooks.on_knock)
    app.cleanup_ctx.append(_lifecycle)
    r = app.router
    r.add_get("/api/v1/floors/{floor_id}/occupancy", occupancy)
    r.add_get("/api/v1/municipalities/{municipality_id}/users/{user_id}/badge", badge)
    r.add_get("/api/v1/people/search", people_search)
    r.add_get("/api/v1/me/published-skills", published_skills)
    r.add_put("/api/v1/me/published-skills", publish_skills)


async def _lifecycle(app: web.Application) -> AsyncIterator[None]:
    # Runs after the core lifecycle started (and stops before it stops); the
    # directory store itself is opened and closed with the other backends.
    directory, webhooks = app[DIRECTORY], app[WEBHOOKS]
    directory.start()
    await webhooks.start()
    try:
        yield
    finally:
        await webhooks.close()
        await directory.close()
