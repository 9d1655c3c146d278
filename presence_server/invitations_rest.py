"""The REST edge of invitation links, the landing page, and their wiring.

Routes over :mod:`presence_server.invitations_api`; the landing page
``/invite`` (the code in the URL's fragment, read by its script, so it never
reaches a server or proxy log). :func:`install` builds the
:class:`~presence_server.invitations.service.InvitationService` on the node's
store, attaches it to the gateway (events, checks, ending guest sessions), to
the campus (deleted projects) and, in cluster mode, to the bus; the service's
loops start and stop in a ``cleanup_ctx`` of their own, inside the server's.

Redeeming needs no bearer token, so it is limited per client address
(``invitations.redeem_per_minute``, counted whether the code was good or not);
with 192-bit codes the limit is about load, not guessing.
"""

from __future__ import annotations

import time
from collections import OrderedDict
from pathlib import Path
from typing import AsyncIterator, Final

import structlog
from aiohttp import web

from presence_server.invitations.service import BUS_CHANNEL, InvitationService
from presence_server.invitations_api import (
    InvitationCreate,
    InvitationRedeem,
    create_invitation,
    list_invitations,
    revoke_invitation,
)
from presence_server.ratelimit import TokenBucket
from presence_server.rest import authenticate, read_body
from presence_server.runtime import RUNTIME
from rooms.errors import DomainError, ErrorCode

__all__ = ["install", "INVITATIONS"]

log = structlog.get_logger(__name__)

INVITATIONS: Final = web.AppKey("invitations", InvitationService)
_PAGE: Final = Path(__file__).parent / "static" / "invite.html"


class RedeemLimits:
    """A token bucket per client address; the least recently used go beyond ``max_addresses``."""

    def __init__(self, per_minute: int, *, max_addresses: int = 10_000) -> None:
        self._per_minute = per_minute
        self._max = max_addresses
        self._buckets: OrderedDict[str, TokenBucket] = OrderedDict()

    def allow(self, address: str) -> bool:
        bucket = self._buckets.pop(address, None) or TokenBucket(self._per_minute / 60, self._per_minute)
        self._buckets[address] = bucket
        while len(self._buckets) > self._max:
            self._buckets.popitem(last=False)
        return bucket.take(time.monotonic())


_LIMITS: Final = web.AppKey("invitation_redeem_limits", RedeemLimits)


def _service(request: web.Request) -> InvitationService:
    return request.app[INVITATIONS]


def _base(request: web.Request) -> str:
    return request.app[RUNTIME].settings.http.public_url or f"{request.scheme}://{request.host}"


async def _create(request: web.Request) -> web.Response:
    actor = (await authenticate(request)).actor
    body: InvitationCreate = await read_body(request, InvitationCreate)
    answer = await create_invitation(
        _service(request), actor, request.match_info["project_id"], body, base=_base(request)
    )
    return web.json_response({"ok": True, **answer}, status=201)


async def _list(request: web.Request) -> web.Response:
    actor = (await authenticate(request)).actor
    answer = await list_invitations(_service(request), actor, request.match_info["project_id"])
    return web.json_response({"ok": True, **answer})


async def _revoke(request: web.Request) -> web.Response:
    actor = (await authenticate(request)).actor
    answer = await revoke_invitation(
        _service(request), actor, request.match_info["project_id"], request.match_info["invitation_id"]
    )
    return web.json_response({"ok": True, **answer})


async def _redeem(request: web.Request) -> web.Response:
    address = request.remote or "unknown"
    if not request.app[_LIMITS].allow(address):
        raise DomainError(ErrorCode.RATE_LIMITED, "too many invitation codes from this address")
    body: InvitationRedeem = await read_body(request, InvitationRedeem)
    return web.json_response({"ok": True, **await _service(request).redeem(body.code)})


async def _page(request: web.Request) -> web.FileResponse:
    return web.FileResponse(_PAGE, headers={"Cache-Control": "no-store"})


async def _lifecycle(app: web.Application) -> AsyncIterator[None]:
    service = app[INVITATIONS]
    await service.start()
    if not service.enabled:
        log.warning("invitations_disabled", reason="invitations.signing_secret is not set")
    try:
        yield
    finally:
        await service.close()


def install(app: web.Application) -> None:
    """Build and wire the invitation service, add its routes (before the app is frozen)."""
    rt = app[RUNTIME]
    settings = rt.settings.invitations
    service = InvitationService(
        rt.backends.invitations, rt.campus, settings, max_token_ttl=rt.settings.auth.max_token_ttl_seconds,
        audit=rt.audit,
    )
    rt.campus.add_listener(service)
    rt.gateway.attach_invitations(service)
    rt.verifier.set_guest_check(service.check_active)  # connect, auth.refresh and REST
    if rt.cluster is not None:
        cluster = rt.cluster
        cluster.add_channel(BUS_CHANNEL, service.on_bus)

        async def publish(body: dict[str, object]) -> None:
            await cluster.publish(BUS_CHANNEL, body)

        service.set_publisher(publish)
    app[INVITATIONS] = service
    app[_LIMITS] = RedeemLimits(settings.redeem_per_minute)
    app.cleanup_ctx.append(_lifecycle)
    r = app.router
    r.add_post("/api/v1/projects/{project_id}/invitations", _create)
    r.add_get("/api/v1/projects/{project_id}/invitations", _list)
    r.add_delete("/api/v1/projects/{project_id}/invitations/{invitation_id}", _revoke)
    r.add_post("/api/v1/invitations/redeem", _redeem)
    r.add_get("/invite", _page)
