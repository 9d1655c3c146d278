"""Which web origins may open a Socket.IO connection.

The page's own origin always may (the server's demo page on whatever port it
runs, or ``http.public_url`` behind a proxy that does not pass the host on);
other origins only when configured (``http.cors_origins`` and each
municipality's ``allowed_origins``). Clients that send no Origin header (native
and Python clients) are not browsers and are not subject to this check.

Where each refusal happens, so that a browser learns *why*:

* a WebSocket handshake is let through Engine.IO whatever its origin
  (:class:`EngineOriginPolicy`); the gateway refuses the Socket.IO connect
  with ``origin_not_allowed`` before it reads the token, and with
  ``municipality_not_allowed`` once the token names a town that does not list
  the origin. A refusal by Engine.IO itself reaches a browser only as "websocket
  error", with no status and no body: nothing a portal could act on. Letting the
  handshake through gives nothing away, since the API takes Bearer tokens, never
  cookies: a page without a token of its own can do nothing with the socket;
* a long-polling request from an unknown origin is refused by Engine.IO as
  before (its answers are HTTP responses a page could read with CORS).
"""

from __future__ import annotations

from typing import Any, Callable, Iterable, Mapping

__all__ = ["OriginPolicy", "EngineOriginPolicy", "TownOrigins"]


class OriginPolicy:
    """``policy(origin, environ)``: may a page on ``origin`` talk to this server?

    ``own`` names the server's public origin(s) (``http.public_url``); the origin
    the request itself was addressed to is always allowed too."""

    def __init__(self, allowed: Iterable[str], *, own: Iterable[str | None] = ()) -> None:
        self.allowed = frozenset(o.rstrip("/") for o in allowed)
        self.own = frozenset(o.rstrip("/") for o in own if o)

    def __call__(self, origin: str | None, environ: Mapping[str, Any]) -> bool:
        if origin is None:
            return True
        return origin in self.allowed or origin in self.own or origin in _own_origins(environ)


class TownOrigins:
    """The origins of every municipality, and their union: one object the socket
    gateway, the HTTP API (:mod:`presence_server.cors`) and Engine.IO all ask.

    Municipalities added or changed at runtime (docs/onboarding.md) are put in
    with :meth:`set_town`, so an origin becomes allowed on this node the moment
    its town is known here, without a restart. Reads are plain look-ups.
    """

    def __init__(
        self, common: Iterable[str], per_municipality: Mapping[str, Iterable[str]], *, own: Iterable[str | None] = ()
    ) -> None:
        self._common = [o.rstrip("/") for o in common]
        self._own = list(own)
        self._towns: dict[str, frozenset[str]] = {}
        self._per: dict[str, OriginPolicy] = {}
        for mid, origins in per_municipality.items():
            self._put(mid, origins)
        self._known = self._union()

    def set_town(self, municipality: str, origins: Iterable[str]) -> None:
        """Allow ``origins`` for ``municipality`` (replacing what it had)."""
        self._put(municipality, origins)
        self._known = self._union()

    def known(self, origin: str | None, environ: Mapping[str, Any]) -> bool:
        """May a page on ``origin`` talk to the server at all (for some municipality)?"""
        return self._known(origin, environ)

    def allowed_for(self, municipality: str, origin: str | None, environ: Mapping[str, Any]) -> bool | None:
        """May it act for ``municipality``? None if the municipality is unknown here."""
        policy = self._per.get(municipality)
        return None if policy is None else policy(origin, environ)

    def town(self, municipality: str) -> frozenset[str] | None:
        """The origins ``municipality`` lists itself (not the common ones), if known."""
        return self._towns.get(municipality)

    def _put(self, municipality: str, origins: Iterable[str]) -> None:
        mine = frozenset(o.rstrip("/") for o in origins)
        self._towns[municipality] = mine
        self._per[municipality] = OriginPolicy([*self._common, *mine], own=self._own)

    def _union(self) -> OriginPolicy:
        return OriginPolicy([*self._common, *(o for mine in self._towns.values() for o in mine)], own=self._own)


class EngineOriginPolicy:
    """Engine.IO's ``cors_allowed_origins``: every WebSocket handshake passes (the
    gateway refuses an unknown origin with a code the browser can read); other
    requests (long-polling) follow ``policy``."""

    def __init__(self, policy: Callable[[str | None, Mapping[str, Any]], bool]) -> None:
        self.policy = policy

    def __call__(self, origin: str | None, environ: Mapping[str, Any]) -> bool:
        if is_websocket_handshake(environ):
            return True
        return self.policy(origin, environ)


def is_websocket_handshake(environ: Mapping[str, Any]) -> bool:
    """A request that opens an Engine.IO session straight over WebSocket."""
    query = str(environ.get("QUERY_STRING", ""))
    return "transport=websocket" in query and "sid=" not in query


def _own_origins(environ: Mapping[str, Any]) -> set[str]:
    scheme = environ.get("wsgi.url_scheme", "http")
    host = environ.get("HTTP_HOST")
    own = {f"{scheme}://{host}"} if host else set()
    forwarded_host = environ.get("HTTP_X_FORWARDED_HOST")
    if forwarded_host or environ.get("HTTP_X_FORWARDED_PROTO"):
        proto = str(environ.get("HTTP_X_FORWARDED_PROTO", scheme)).split(",")[0].strip()
        fhost = str(forwarded_host or host).split(",")[0].strip()
        own.add(f"{proto}://{fhost}")
    return own
