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

from typing import Any, Iterable, Mapping

__all__ = ["OriginPolicy", "EngineOriginPolicy"]


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


class EngineOriginPolicy:
    """Engine.IO's ``cors_allowed_origins``: every WebSocket handshake passes (the
    gateway refuses an unknown origin with a code the browser can read); other
    requests (long-polling) follow ``policy``."""

    def __init__(self, policy: OriginPolicy) -> None:
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
