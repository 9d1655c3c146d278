"""Browser origins for the HTTP API: CORS headers, preflights, and the
per-municipality rule for authenticated requests.

Two questions, two answers:

* *May a page on this origin talk to the server at all?* An origin is
  **known** if it is the server's own, in ``http.cors_origins``, or in any
  municipality's ``allowed_origins``. Known origins get CORS headers
  (``Access-Control-Allow-Origin: <origin>``, ``Vary: Origin``; no credentials
  — the API uses Bearer tokens, never cookies) and their preflights are
  answered 204; a preflight from an unknown origin is refused 403
  ``origin_not_allowed`` with the error shape, and other responses to it carry no CORS headers, so the
  browser keeps them from the page.
* *May it act for this token?* A request with a Bearer token and an
  ``Origin`` header (a browser) must come from an origin allowed for the
  token's municipality (its ``allowed_origins``, ``http.cors_origins`` or the
  server's own); otherwise 403 ``municipality_not_allowed``. One town's portal cannot use a
  token of another town. Requests without ``Origin`` (servers, scripts) are not
  browsers and are not subject to origins.

The Socket.IO handshake applies the same two rules (:mod:`presence_server.origins`
for the first, :class:`~presence_server.gateway.Gateway` at connect for the second).
``/socket.io/`` is left alone here: Engine.IO answers its own CORS.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any, Awaitable, Callable, Final

from aiohttp import web

from presence_server import portal_metrics as pm
from presence_server.config import Settings
from presence_server.origins import TownOrigins
from rooms.actors import Actor
from rooms.errors import DomainError, ErrorCode

__all__ = ["OriginRules", "town_origins", "ORIGIN_RULES", "cors_middleware", "require_origin", "ALLOW_HEADERS", "ALLOW_METHODS"]

ALLOW_METHODS: Final = "GET, POST, PUT, PATCH, DELETE, OPTIONS"
ALLOW_HEADERS: Final = "Authorization, Content-Type, Accept-Language"
_MAX_AGE: Final = "600"
_SKIP_PREFIX: Final = "/socket.io"


class OriginRules:
    """Which origins are known, and which each municipality allows: the HTTP view
    of a :class:`~presence_server.origins.TownOrigins` (shared with the socket
    gateway, so a municipality added at runtime is allowed on both at once)."""

    def __init__(
        self,
        common: Iterable[str] = (),
        per_municipality: Mapping[str, Iterable[str]] | None = None,
        *,
        own: str | None = None,
        towns: TownOrigins | None = None,
    ) -> None:
        self.towns = towns or TownOrigins(common, per_municipality or {}, own=[own])

    @classmethod
    def from_settings(cls, settings: Settings) -> OriginRules:
        return cls(towns=town_origins(settings))

    def known(self, origin: str, request: web.Request) -> bool:
        return self.towns.known(origin, _environ(request))

    def allowed_for(self, municipality: str, origin: str, request: web.Request) -> bool:
        return self.towns.allowed_for(municipality, origin, _environ(request)) is True


def town_origins(settings: Settings) -> TownOrigins:
    """The configured origins: ``http.cors_origins``, each municipality's
    ``allowed_origins`` and the server's own ``http.public_url``."""
    return TownOrigins(
        settings.http.cors_origins,
        {mid: conf.allowed_origins for mid, conf in settings.auth.municipalities.items()},
        own=[settings.http.public_url],
    )


ORIGIN_RULES: Final = web.AppKey("origin_rules", OriginRules)


def _environ(request: web.Request) -> dict[str, Any]:
    """The WSGI-style view :class:`OriginPolicy` reads (it serves Engine.IO too)."""
    headers = request.headers
    environ: dict[str, Any] = {"wsgi.url_scheme": request.scheme, "HTTP_HOST": headers.get("Host")}
    for name in ("X-Forwarded-Host", "X-Forwarded-Proto"):
        if name in headers:
            environ["HTTP_" + name.upper().replace("-", "_")] = headers[name]
    return environ


def _lang(request: web.Request) -> str:
    return "de" if request.headers.get("Accept-Language", "").lower().startswith("de") else "en"


def _refusal(request: web.Request) -> web.Response:
    error = DomainError(ErrorCode.ORIGIN_NOT_ALLOWED)
    return web.json_response({"ok": False, "error": error.to_wire(_lang(request))}, status=403)


def _allow(response: web.StreamResponse, origin: str) -> None:
    response.headers["Access-Control-Allow-Origin"] = origin
    vary = response.headers.get("Vary")
    if vary is None:
        response.headers["Vary"] = "Origin"
    elif "origin" not in vary.lower():
        response.headers["Vary"] = f"{vary}, Origin"


@web.middleware
async def cors_middleware(
    request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
) -> web.StreamResponse:
    origin = request.headers.get("Origin")
    rules = request.app.get(ORIGIN_RULES)
    if origin is None or rules is None or request.path.startswith(_SKIP_PREFIX):
        return await handler(request)
    known = rules.known(origin, request)
    if request.method == "OPTIONS" and "Access-Control-Request-Method" in request.headers:
        if not known:
            pm.ORIGIN_REFUSALS.labels("preflight").inc()
            return _refusal(request)
        response = web.Response(status=204)
        _allow(response, origin)
        response.headers["Access-Control-Allow-Methods"] = ALLOW_METHODS
        response.headers["Access-Control-Allow-Headers"] = ALLOW_HEADERS
        response.headers["Access-Control-Max-Age"] = _MAX_AGE
        return response
    answer = await handler(request)
    if known and not answer.prepared:
        _allow(answer, origin)
    return answer


def require_origin(request: web.Request, actor: Actor) -> None:
    """Refuse (403 ``municipality_not_allowed``) a browser request whose origin the token's
    municipality does not allow. Called once the token is verified."""
    origin = request.headers.get("Origin")
    rules = request.app.get(ORIGIN_RULES)
    if origin is None or rules is None:
        return
    if not rules.allowed_for(actor.municipality_id, origin, request):
        pm.ORIGIN_REFUSALS.labels("municipality").inc()
        raise DomainError(ErrorCode.MUNICIPALITY_NOT_ALLOWED)
