"""The embeddable floor: the widget's modules and the iframe page.

Routes:

* ``GET /widget/{name}.js`` — the ES modules of ``<virtual-office-floor>``
  (``static/widget/``), with ``Access-Control-Allow-Origin: *``: a portal on
  another origin loads them as module scripts, which browsers fetch with CORS.
  They are public code; what protects the office is the token and the origin
  checks of the socket, not the script.
* ``GET /embed/floors/{floor_id}`` — a page that holds nothing but the widget,
  for portals that prefer an iframe. Its ``Content-Security-Policy:
  frame-ancestors`` lists the origins that may frame it (:func:`frame_origins`).
  The token never travels in the URL the server sees: the portal passes it in
  the fragment (``#token=...``) or with a ``postMessage`` command
  (docs/embedding.md), so it is in no access log and no ``Referer``.

The page is the same for everyone and carries no secret, so it needs no token;
the floor's visibility is enforced by the socket as always.
"""

from __future__ import annotations

import html
import json
import re
from pathlib import Path
from typing import Final, Mapping

from aiohttp import web

from presence_server.config import Settings
from presence_server.runtime import RUNTIME
from rooms.model import Cooperation, Floor, OwnerKind
from rooms.person import split_person
from rooms.project import Project

__all__ = ["add_embed_routes", "frame_origins", "content_security_policy", "WIDGET_DIR"]

WIDGET_DIR: Final = Path(__file__).parent / "static" / "widget"
_PAGE: Final = WIDGET_DIR / "embed.html"
# Only plain origins go into the header: a stray space, ';' or quote in the
# configuration must not be able to add a directive.
_ORIGIN: Final = re.compile(r"^https?://[A-Za-z0-9.\-\[\]:]+$")
# nosniff, and the page's Referrer-Policy, come from presence_server.security_headers.
_ASSET_HEADERS: Final = {
    "Access-Control-Allow-Origin": "*",
    "Cache-Control": "no-cache",
}


def frame_origins(
    settings: Settings,
    floor: Floor | None,
    cooperations: Mapping[str, Cooperation],
    projects: Mapping[str, Project] | None = None,
) -> dict[str, list[str]]:
    """Who may frame the page of ``floor``: ``{municipality id: origins}``.

    The municipalities are those whose staff may see the floor: its owner, or
    every member of the cooperation that owns it, or for a project floor the
    member municipalities and the towns of its named members and coordinators
    (their portals are where those people work). Each gets its own
    ``allowed_origins`` plus the origins for everyone: ``http.cors_origins`` and
    the server's own ``http.public_url``. An unknown floor gets only the origins
    for everyone, under the key ``"*"``. Nothing else: the header names no origin
    that could not open a session for one of the floor's towns.
    """
    public = [settings.http.public_url] if settings.http.public_url else []
    common = [*settings.http.cors_origins, *public]
    if floor is None:
        return {"*": _clean(common)}
    if floor.owner_kind is OwnerKind.MUNICIPALITY:
        members: tuple[str, ...] = (floor.owner_id,)
    elif floor.owner_kind is OwnerKind.PROJECT:
        project = (projects or {}).get(floor.owner_id)
        members = () if project is None else _project_towns(project)
    else:
        coop = cooperations.get(floor.owner_id)
        members = coop.members if coop is not None else ()
    municipalities = settings.auth.municipalities
    result = {"*": _clean(common)}
    for mid in members:
        conf = municipalities.get(mid)
        if conf is not None:
            result[mid] = _clean([*common, *conf.allowed_origins])
    return result


def _project_towns(project: Project) -> tuple[str, ...]:
    named = (split_person(p)[0] for p in (*project.coordinators, *project.members))
    return tuple(dict.fromkeys([*project.municipalities, *named]))


def content_security_policy(origins: Mapping[str, list[str]]) -> str:
    """The page's policy: only its own scripts, styles and socket; framed by
    itself and the union of ``origins``."""
    union = sorted({o for listed in origins.values() for o in listed})
    return "; ".join(
        [
            "default-src 'none'",
            "script-src 'self'",
            "style-src 'self'",
            "connect-src 'self'",
            "img-src 'self' data:",
            "media-src 'self' blob: mediastream:",
            "base-uri 'none'",
            "form-action 'none'",
            "frame-ancestors " + " ".join(["'self'", *union]),
        ]
    )


def _clean(origins: list[str]) -> list[str]:
    return list(dict.fromkeys(o.rstrip("/") for o in origins if _ORIGIN.match(o.rstrip("/"))))


def _language(request: web.Request) -> str:
    lang = request.query.get("lang", "")
    if lang in ("de", "en"):
        return lang
    return "de" if request.headers.get("Accept-Language", "").lower().startswith("de") else "en"


async def embed_page(request: web.Request) -> web.Response:
    rt = request.app[RUNTIME]
    floor_id = request.match_info["floor_id"]
    floor = rt.campus.floor(floor_id)
    origins = frame_origins(rt.settings, floor, rt.campus.cooperations, rt.campus.projects)
    lang = _language(request)
    config = {"floor_id": floor_id, "origins": origins}
    # JSON inside <script type="application/json">: "</" must not end the element.
    data = json.dumps(config, separators=(",", ":")).replace("</", "<\\/")
    page = (
        _PAGE.read_text(encoding="utf-8")
        .replace("{{lang}}", lang)
        .replace("{{title}}", "Virtuelles Büro" if lang == "de" else "Virtual office")
        .replace("{{floor}}", html.escape(floor_id, quote=True))
        .replace("{{config}}", data)
    )
    return web.Response(
        text=page,
        content_type="text/html",
        # Its own policy (the security-headers hook keeps it): framed by the floor's portals.
        headers={"Content-Security-Policy": content_security_policy(origins), "Cache-Control": "no-store"},
    )


async def widget_asset(request: web.Request) -> web.StreamResponse:
    path = WIDGET_DIR / request.match_info["name"]
    if not path.is_file():
        raise web.HTTPNotFound()
    content_type = "text/css" if path.suffix == ".css" else "application/javascript"
    return web.FileResponse(path, headers={"Content-Type": f"{content_type}; charset=utf-8", **_ASSET_HEADERS})


def add_embed_routes(router: web.UrlDispatcher) -> None:
    # Names without '/' or '..': the regex is the path check.
    router.add_get(r"/widget/{name:[a-z0-9][a-z0-9-]*\.(?:js|css)}", widget_asset)
    router.add_get(r"/embed/floors/{floor_id:[A-Za-z0-9._:@-]{1,128}}", embed_page)
