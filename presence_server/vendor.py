"""Third-party browser code for the demo page, served from ``web/node_modules``.

The demo page uses the official ``socket.io-client`` build. It is not committed:
``web/package.json`` and ``web/package-lock.json`` pin it and ``npm ci --prefix web``
installs it. This module serves the installed file at ``/vendor/socket.io.min.js``
and answers a JSON ``not_found`` error when it is not installed.
"""

from __future__ import annotations

from pathlib import Path
from typing import Final

from aiohttp import web

__all__ = ["add_vendor_routes", "socket_io_client_path", "SOCKET_IO_ROUTE"]

SOCKET_IO_ROUTE: Final = "/vendor/socket.io.min.js"
_SOCKET_IO_FILE: Final = Path("node_modules", "socket.io-client", "dist", "socket.io.min.js")
_REPO_WEB_DIR: Final = Path(__file__).resolve().parents[1] / "web"
_NOT_INSTALLED: Final = "socket.io-client is not installed: run npm ci --prefix web"


def _web_dirs() -> list[Path]:
    """Where ``web/`` may be: below the working directory, then beside this package."""
    dirs = [Path.cwd() / "web", _REPO_WEB_DIR]
    return list(dict.fromkeys(d.resolve() for d in dirs))


def socket_io_client_path() -> Path | None:
    """The installed ``socket.io.min.js``, or None if ``npm ci --prefix web`` has not run."""
    for web_dir in _web_dirs():
        candidate = web_dir / _SOCKET_IO_FILE
        if candidate.is_file():
            return candidate
    return None


async def socket_io_client(request: web.Request) -> web.StreamResponse:
    path = socket_io_client_path()
    if path is None:
        return web.json_response(
            {"ok": False, "error": {"code": "not_found", "message": _NOT_INSTALLED}}, status=404
        )
    # Looked up per request, so installing the package needs no restart.
    return web.FileResponse(
        path,
        headers={"Content-Type": "application/javascript; charset=utf-8", "Cache-Control": "no-cache"},
    )


def add_vendor_routes(router: web.UrlDispatcher) -> None:
    router.add_get(SOCKET_IO_ROUTE, socket_io_client)
