"""Third-party browser code for the pages, served from ``web/node_modules``.

The demo page and the widget use the official ``socket.io-client`` build. It is
not committed: ``web/package.json`` and ``web/package-lock.json`` pin it and
``npm ci --prefix web`` installs it. This module serves the installed files (the
classic build at ``/vendor/socket.io.min.js``, the ES module build for the widget
at ``/widget/vendor/socket.io.esm.min.js``) and answers a JSON ``not_found``
error when they are not installed.
"""

from __future__ import annotations

from pathlib import Path
from typing import Awaitable, Callable, Final

from aiohttp import web

__all__ = ["add_vendor_routes", "socket_io_client_path", "SOCKET_IO_ROUTE", "SOCKET_IO_ESM_ROUTE"]

SOCKET_IO_ROUTE: Final = "/vendor/socket.io.min.js"
#: Beside the widget's modules, so its relative ``import`` finds it on any origin.
SOCKET_IO_ESM_ROUTE: Final = "/widget/vendor/socket.io.esm.min.js"
_SOCKET_IO_DIST: Final = Path("node_modules", "socket.io-client", "dist")
_REPO_WEB_DIR: Final = Path(__file__).resolve().parents[1] / "web"
_NOT_INSTALLED: Final = "socket.io-client is not installed: run npm ci --prefix web"


def _web_dirs() -> list[Path]:
    """Where ``web/`` may be: below the working directory, then beside this package."""
    dirs = [Path.cwd() / "web", _REPO_WEB_DIR]
    return list(dict.fromkeys(d.resolve() for d in dirs))


def socket_io_client_path(name: str = "socket.io.min.js") -> Path | None:
    """The installed build ``name``, or None if ``npm ci --prefix web`` has not run."""
    for web_dir in _web_dirs():
        candidate = web_dir / _SOCKET_IO_DIST / name
        if candidate.is_file():
            return candidate
    return None


def _serve(name: str, headers: dict[str, str]) -> Callable[[web.Request], Awaitable[web.StreamResponse]]:
    async def handler(request: web.Request) -> web.StreamResponse:
        path = socket_io_client_path(name)
        if path is None:
            return web.json_response(
                {"ok": False, "error": {"code": "not_found", "message": _NOT_INSTALLED}}, status=404
            )
        # Looked up per request, so installing the package needs no restart.
        return web.FileResponse(
            path,
            headers={"Content-Type": "application/javascript; charset=utf-8", "Cache-Control": "no-cache", **headers},
        )

    return handler


def add_vendor_routes(router: web.UrlDispatcher) -> None:
    router.add_get(SOCKET_IO_ROUTE, _serve("socket.io.min.js", {}))
    # A portal on another origin imports the widget as a module, and module
    # scripts are fetched with CORS; the file is public code, so any origin may.
    router.add_get(SOCKET_IO_ESM_ROUTE, _serve("socket.io.esm.min.js", {"Access-Control-Allow-Origin": "*"}))
