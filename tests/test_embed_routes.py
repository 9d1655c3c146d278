"""The widget's routes over plain HTTP: module files with CORS, the iframe page
and its frame-ancestors policy, computed from the floor's towns."""

from __future__ import annotations

import json
import re

from presence_server.embed import frame_origins
from tests.conftest import StartServer, make_settings

PORTAL_A = "https://intranet.altbach.example"
PORTAL_L = "https://portal.lindenau.example"
EVERYONE = "https://cooperation.example"
ENV = {
    "PRESENCE_HTTP__CORS_ORIGINS": json.dumps([EVERYONE]),
    "PRESENCE_AUTH__MUNICIPALITIES__ALTBACH__ALLOWED_ORIGINS": json.dumps([PORTAL_A]),
    "PRESENCE_AUTH__MUNICIPALITIES__LINDENAU__ALLOWED_ORIGINS": json.dumps([PORTAL_L, "https://bad.example; script-src *"]),
    "PRESENCE_AUTH__MUNICIPALITIES__BERGHEIM__ALLOWED_ORIGINS": "[]",
    "PRESENCE_AUTH__MUNICIPALITIES__SEEFELD__ALLOWED_ORIGINS": "[]",
}


def ancestors(csp: str) -> list[str]:
    match = re.search(r"frame-ancestors ([^;]*)", csp)
    assert match is not None, csp
    return match.group(1).split()


async def test_widget_modules_are_served_to_any_origin(start_server: StartServer) -> None:
    office = await start_server(ENV)
    async with office.server_session(Origin="https://elsewhere.example") as http:
        for path in ("/widget/virtual-office-floor.js", "/widget/session.js", "/widget/vendor/socket.io.esm.min.js"):
            async with http.get(path) as resp:
                assert resp.status == 200, path
                assert resp.headers["Access-Control-Allow-Origin"] == "*"
                assert resp.headers["Content-Type"].startswith("application/javascript")
                assert "export" in await resp.text()
        # Only files of the widget's folder, by name.
        for path in ("/widget/..%2Fembed.py", "/widget/nope.js", "/widget/embed.html"):
            async with http.get(path) as resp:
                assert resp.status == 404, path
                assert (await resp.json())["error"]["code"] == "not_found"


async def test_the_shared_floor_may_be_framed_by_every_member_towns_portals(start_server: StartServer) -> None:
    office = await start_server(ENV)
    async with office.server_session() as http:
        async with http.get("/embed/floors/projekt?lang=en#token=never-sent") as resp:
            assert resp.status == 200
            csp = resp.headers["Content-Security-Policy"]
            assert resp.headers["Referrer-Policy"] == "no-referrer"
            assert resp.headers["Cache-Control"] == "no-store"
            page = await resp.text()
    # Both towns' portals and the origins for everyone; the malformed entry is dropped.
    assert sorted(ancestors(csp)) == sorted(["'self'", EVERYONE, PORTAL_A, PORTAL_L])
    assert "script-src 'self'" in csp and "default-src 'none'" in csp
    assert '<html lang="en">' in page and 'floor="projekt"' in page
    config = json.loads(re.search(r'<script type="application/json" id="vo-embed">(.*?)</script>', page).group(1))
    assert config["floor_id"] == "projekt"
    assert config["origins"]["altbach"] == [EVERYONE, PORTAL_A]
    assert config["origins"]["lindenau"] == [EVERYONE, PORTAL_L]
    assert config["origins"]["seefeld"] == [EVERYONE]


async def test_a_towns_own_floor_may_be_framed_only_by_its_portals(start_server: StartServer) -> None:
    office = await start_server(ENV)
    async with office.server_session(**{"Accept-Language": "de-DE"}) as http:
        async with http.get("/embed/floors/altbach-eg") as resp:
            assert sorted(ancestors(resp.headers["Content-Security-Policy"])) == sorted(["'self'", EVERYONE, PORTAL_A])
            assert '<html lang="de">' in await resp.text()
        async with http.get("/embed/floors/bergheim-eg") as resp:
            assert sorted(ancestors(resp.headers["Content-Security-Policy"])) == sorted(["'self'", EVERYONE])
        # An unknown floor gets the same page (the widget says "not found" after sign-in),
        # framed only by the origins for everyone: nothing about the campus is revealed.
        async with http.get("/embed/floors/no-such-floor") as resp:
            assert resp.status == 200
            assert sorted(ancestors(resp.headers["Content-Security-Policy"])) == sorted(["'self'", EVERYONE])
        async with http.get("/embed/floors/bad%20id") as resp:
            assert resp.status == 404


async def test_the_public_url_frames_every_page_and_development_ports_never_do(start_server: StartServer) -> None:
    office = await start_server({**ENV, "PRESENCE_HTTP__PUBLIC_URL": "https://office.example.org/"})
    async with office.server_session() as http:
        async with http.get("/embed/floors/bergheim-eg") as resp:
            csp = resp.headers["Content-Security-Policy"]
    assert sorted(ancestors(csp)) == sorted(["'self'", EVERYONE, "https://office.example.org"])
    # The development configuration lists no origin of its own: a server on another
    # port or host is framed by itself ('self') and nothing else.
    bare = await start_server()
    async with bare.server_session() as http:
        async with http.get("/embed/floors/projekt") as resp:
            assert ancestors(resp.headers["Content-Security-Policy"]) == ["'self'"]


def test_frame_origins_of_a_cooperation_floor_are_per_member_town() -> None:
    from rooms.model import Cooperation, Floor, OwnerKind

    settings = make_settings(ENV)
    floor = Floor("f", "F", OwnerKind.COOPERATION, "coop")
    coops = {"coop": Cooperation("coop", "Coop", ("altbach", "bergheim", "unknown-town"))}
    assert frame_origins(settings, floor, coops) == {
        "*": [EVERYONE],
        "altbach": [EVERYONE, PORTAL_A],
        "bergheim": [EVERYONE],
    }
    assert frame_origins(settings, floor, {}) == {"*": [EVERYONE]}  # cooperation gone: nobody else


def test_frame_origins_of_a_project_floor_are_its_member_and_named_towns() -> None:
    from rooms.model import Floor, OwnerKind
    from rooms.person import PersonId
    from rooms.project import Project

    settings = make_settings(ENV)
    floor = Floor("f", "F", OwnerKind.PROJECT, "p-1")
    # Bergheim by its named coordinator; Altbach, whose portal is configured, is not a member.
    project = Project("p-1", "P", "", coordinators=(PersonId("bergheim/ben"),), municipalities=("seefeld",))
    assert frame_origins(settings, floor, {}, {"p-1": project}) == {
        "*": [EVERYONE],
        "seefeld": [EVERYONE],
        "bergheim": [EVERYONE],
    }
    joined = Project("p-1", "P", "", coordinators=(PersonId("altbach/anna"),))
    assert frame_origins(settings, floor, {}, {"p-1": joined})["altbach"] == [EVERYONE, PORTAL_A]
    assert frame_origins(settings, floor, {}, {}) == {"*": [EVERYONE]}  # project gone: nobody else
