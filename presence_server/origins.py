"""Which web origins may open a Socket.IO connection.

The page's own origin always may (the server's demo page on whatever port it
runs); other origins only when configured (``http.cors_origins`` and each
municipality's ``allowed_origins``). Clients that send no Origin header (native
and Python clients) are not browsers and are not subject to this check.
"""

from __future__ import annotations

from typing import Any, Iterable, Mapping

__all__ = ["OriginPolicy"]


class OriginPolicy:
    def __init__(self, allowed: Iterable[str]) -> None:
        self.allowed = frozenset(o.rstrip("/") for o in allowed)

    def __call__(self, origin: str | None, environ: Mapping[str, Any]) -> bool:
        if origin is None:
            return True
        return origin in self.allowed or origin in _own_origins(environ)


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
