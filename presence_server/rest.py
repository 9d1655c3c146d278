"""The REST API: campus administration and read access, health, docs (metrics: metrics_http).

Bearer tokens, the same JWTs as the socket. Every refusal is the one error shape
``{"ok": false, "error": {"code", "message"}}`` with a fitting HTTP status; the
middleware also turns aiohttp's own 404/405/413 into that shape.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Awaitable, Callable, Final

import structlog
from aiohttp import web
from pydantic import BaseModel, ValidationError

from presence_server import metrics
from presence_server import rest_models as rm
from presence_server.auth import Identity, mint_token
from presence_server.cors import require_origin
from presence_server.embed import add_embed_routes
from presence_server.messages import validation_error
from presence_server.openapi import openapi_document
from presence_server.runtime import RUNTIME, Runtime
from presence_server.vendor import add_vendor_routes
from rooms.errors import DomainError, ErrorCode, StoreUnavailable
from rooms.model import OwnerKind, Rect

__all__ = ["setup", "error_middleware", "HTTP_STATUS", "authenticate"]

log = structlog.get_logger(__name__)

STATIC_DIR: Final = Path(__file__).parent / "static"

HTTP_STATUS: Final[dict[ErrorCode, int]] = {
    ErrorCode.INVALID_PAYLOAD: 400,
    ErrorCode.UNKNOWN_EVENT: 400,
    ErrorCode.UNAUTHENTICATED: 401,
    ErrorCode.TOKEN_EXPIRED: 401,
    ErrorCode.FORBIDDEN: 403,
    ErrorCode.ORIGIN_NOT_ALLOWED: 403,
    ErrorCode.MUNICIPALITY_NOT_ALLOWED: 403,
    ErrorCode.NOT_FOUND: 404,
    ErrorCode.CONFLICT: 409,
    ErrorCode.PAYLOAD_TOO_LARGE: 413,
    ErrorCode.INVITATION_EXPIRED: 410,
    ErrorCode.INVITATION_USED_UP: 410,
    ErrorCode.INVITATION_REVOKED: 410,
    ErrorCode.RATE_LIMITED: 429,
    ErrorCode.TOO_MANY_SESSIONS: 429,
    ErrorCode.INTERNAL: 500,
    ErrorCode.UNAVAILABLE: 503,
}


def _runtime(request: web.Request) -> Runtime:
    return request.app[RUNTIME]


def _lang(request: web.Request) -> str:
    return "de" if request.headers.get("Accept-Language", "").lower().startswith("de") else "en"


def _error_response(request: web.Request, exc: DomainError) -> web.Response:
    metrics.ERRORS.labels(exc.code.value).inc()
    status = HTTP_STATUS.get(exc.code, 409)  # domain rule refusals (knock_required, ...) are conflicts
    return web.json_response({"ok": False, "error": exc.to_wire(_lang(request))}, status=status)


_AIOHTTP_ERRORS: Final[dict[int, ErrorCode]] = {
    400: ErrorCode.INVALID_PAYLOAD,
    404: ErrorCode.NOT_FOUND,
    405: ErrorCode.INVALID_PAYLOAD,
    413: ErrorCode.PAYLOAD_TOO_LARGE,
}


@web.middleware
async def error_middleware(
    request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
) -> web.StreamResponse:
    try:
        return await handler(request)
    except DomainError as exc:
        return _error_response(request, exc)
    except StoreUnavailable:
        return _error_response(request, DomainError(ErrorCode.UNAVAILABLE))
    except web.HTTPException as exc:
        code = _AIOHTTP_ERRORS.get(exc.status)
        if code is None or exc.status < 400:
            raise
        response = _error_response(request, DomainError(code, exc.reason))
        response.set_status(exc.status)
        return response
    except Exception:
        log.exception("rest_failed", path=request.path, method=request.method)
        return _error_response(request, DomainError(ErrorCode.INTERNAL))


async def _identity(request: web.Request) -> Identity:
    header = request.headers.get("Authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token:
        raise DomainError(ErrorCode.UNAUTHENTICATED, "Authorization: Bearer <token> required")
    identity: Identity = await _runtime(request).verifier.verify(token.strip())
    structlog.contextvars.bind_contextvars(
        person=identity.actor.person_id, municipality=identity.actor.municipality_id
    )
    require_origin(request, identity.actor)  # a browser's origin must suit the token's town
    return identity


#: The verified caller of an API request, for the other API modules (portal_rest).
authenticate = _identity


async def _body(request: web.Request, model: type[BaseModel]) -> Any:
    raw = await request.read()
    try:
        return model.model_validate_json(raw or b"{}")
    except ValidationError as exc:
        raise validation_error(exc) from None


#: A request body checked against a model, for the other API modules (projects_api).
read_body = _body


def _ok(**data: Any) -> web.Response:
    return web.json_response({"ok": True, **data})


# ---------------------------------------------------------------- campus reads
async def get_campus(request: web.Request) -> web.Response:
    actor = (await _identity(request)).actor
    return _ok(campus=_runtime(request).campus.campus_view(actor))


async def get_floor(request: web.Request) -> web.Response:
    actor = (await _identity(request)).actor
    return _ok(snapshot=await _runtime(request).presence.floor_view(actor, request.match_info["floor_id"]))


async def get_room(request: web.Request) -> web.Response:
    actor = (await _identity(request)).actor
    rt = _runtime(request)
    room = rt.campus.visible_room(actor, request.match_info["room_id"])
    occupants = [m.to_wire() for m in await rt.presence.store.occupants(room.floor_id, room.id)]
    return _ok(room=room.to_dict(), occupants=occupants)


# --------------------------------------------------------------- campus writes
async def create_floor(request: web.Request) -> web.Response:
    actor = (await _identity(request)).actor
    body: rm.FloorCreate = await _body(request, rm.FloorCreate)
    floor = await _runtime(request).campus.create_floor(
        actor,
        name=body.name,
        owner_kind=OwnerKind(body.owner_kind),
        owner_id=body.owner_id,
        width=body.width,
        height=body.height,
        position=body.position,
        floor_id=body.id,
    )
    return web.json_response({"ok": True, "floor": floor.to_dict()}, status=201)


async def update_floor(request: web.Request) -> web.Response:
    actor = (await _identity(request)).actor
    body: rm.FloorPatch = await _body(request, rm.FloorPatch)
    floor = await _runtime(request).campus.update_floor(
        actor, request.match_info["floor_id"], **body.model_dump(exclude_unset=True)
    )
    return _ok(floor=floor.to_dict())


async def delete_floor(request: web.Request) -> web.Response:
    actor = (await _identity(request)).actor
    floor = await _runtime(request).campus.delete_floor(actor, request.match_info["floor_id"])
    return _ok(floor=floor.to_dict())


async def create_room(request: web.Request) -> web.Response:
    actor = (await _identity(request)).actor
    body: rm.RoomCreate = await _body(request, rm.RoomCreate)
    room = await _runtime(request).campus.create_room(
        actor,
        request.match_info["floor_id"],
        name=body.name,
        kind=body.kind,
        rect=Rect(body.rect.x, body.rect.y, body.rect.w, body.rect.h),
        door=body.door,
        capacity=body.capacity,
        owners=body.owners,
        expires_at=body.expires_at,
        room_id=body.id,
    )
    return web.json_response({"ok": True, "room": room.to_dict()}, status=201)


async def update_room(request: web.Request) -> web.Response:
    actor = (await _identity(request)).actor
    body: rm.RoomPatch = await _body(request, rm.RoomPatch)
    changes = body.model_dump(exclude_unset=True)
    if "rect" in changes:
        r = changes["rect"]
        changes["rect"] = Rect(r["x"], r["y"], r["w"], r["h"])
    room = await _runtime(request).campus.update_room(actor, request.match_info["room_id"], **changes)
    return _ok(room=room.to_dict())


async def delete_room(request: web.Request) -> web.Response:
    actor = (await _identity(request)).actor
    room = await _runtime(request).campus.delete_room(actor, request.match_info["room_id"])
    return _ok(room=room.to_dict())


# ------------------------------------------------------------------ operations
async def healthz(request: web.Request) -> web.Response:
    return web.json_response({"status": "ok"})


async def readyz(request: web.Request) -> web.Response:
    ready = _runtime(request).ready
    return web.json_response({"ready": ready}, status=200 if ready else 503)


async def openapi(request: web.Request) -> web.Response:
    return web.json_response(openapi_document())


async def dev_token(request: web.Request) -> web.Response:
    """Development only: mint a token for anyone, so a newcomer can try everything."""
    rt = _runtime(request)
    if not rt.settings.dev_mode:
        raise DomainError(ErrorCode.NOT_FOUND)
    try:
        fields = {k: v for k, v in request.query.items() if k != "role"}
        query = rm.DevTokenQuery.model_validate({**fields, "roles": request.query.getall("role", ["staff"])})
    except ValidationError as exc:
        raise validation_error(exc) from None
    try:
        token = mint_token(
            rt.settings.auth,
            municipality=query.municipality,
            user_id=query.user,
            name=query.name,
            roles=query.roles,
            ttl_seconds=rt.settings.auth.dev_token_ttl_seconds,
            conf=rt.verifier.auth_for(query.municipality),  # runtime municipalities too
        )
    except ValueError as exc:  # unknown municipality and the like
        raise DomainError(ErrorCode.INVALID_PAYLOAD, str(exc)) from None
    return _ok(token=token)


async def index(request: web.Request) -> web.FileResponse:
    return web.FileResponse(STATIC_DIR / "index.html")


def setup(app: web.Application) -> None:
    r = app.router
    r.add_get("/", index)
    r.add_get("/healthz", healthz)
    r.add_get("/readyz", readyz)
    r.add_get("/openapi.json", openapi)
    r.add_get("/dev/token", dev_token)
    add_vendor_routes(r)
    add_embed_routes(r)  # the widget's modules and the iframe page
    r.add_get("/api/v1/campus", get_campus)
    r.add_post("/api/v1/floors", create_floor)
    r.add_get("/api/v1/floors/{floor_id}", get_floor)
    r.add_patch("/api/v1/floors/{floor_id}", update_floor)
    r.add_delete("/api/v1/floors/{floor_id}", delete_floor)
    r.add_post("/api/v1/floors/{floor_id}/rooms", create_room)
    r.add_get("/api/v1/rooms/{room_id}", get_room)
    r.add_patch("/api/v1/rooms/{room_id}", update_room)
    r.add_delete("/api/v1/rooms/{room_id}", delete_room)
    if STATIC_DIR.is_dir():
        r.add_static("/static/", STATIC_DIR, follow_symlinks=False)
