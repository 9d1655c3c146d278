"""The portal API against a real in-process server with real Socket.IO clients:
floor occupancy, presence badges (JSON and SVG) and the specialist finder, each
respecting visibility and, for the finder, the availability ranking."""

from __future__ import annotations

from pathlib import Path

import pytest

from rooms.person import PersonId
from tests.conftest import OfficeServer, StartServer
from tests.support.portal import FERNDORF_FLOOR, eventually, ferndorf_env, get, person

FLOOR = "projekt"
NATURE = "Naturschutz"


@pytest.fixture
async def office(start_server: StartServer, tmp_path: Path) -> OfficeServer:
    return await start_server({**ferndorf_env(tmp_path), "PRESENCE_PRESENCE__GRACE_SECONDS": "0.2"})


def tok(office: OfficeServer, user: str, municipality: str, **kw) -> str:
    return office.token(user, municipality, **kw)


# ------------------------------------------------------------------ occupancy
async def test_occupancy_lists_rooms_with_their_occupants_and_the_hallway(office: OfficeServer) -> None:
    anna = await person(office, "anna.altbach", "altbach", name="Anna Albrecht")
    ben = await person(office, "ben.bergheim", "bergheim", name="Ben Berger")
    await anna.move(FLOOR, "projekt-lounge")
    await anna.request("call.join", {"room_id": "projekt-lounge"})
    await ben.move(FLOOR)
    await ben.set_status("busy", "Haushaltsplan")

    status, body = await get(office, tok(office, "lea.lindenau", "lindenau"), f"/api/v1/floors/{FLOOR}/occupancy")
    assert status == 200 and body["ok"] is True
    assert body["floor"] == {"id": FLOOR, "name": "Projektetage Digitales Rathaus", "owner_kind": "cooperation",
                             "owner_id": "vier-taeler"}
    assert isinstance(body["seq"], int) and body["seq"] > 0
    rooms = {r["room_id"]: r for r in body["rooms"]}
    assert set(rooms) == {"projekt-raum-digitales-rathaus", "projekt-besprechung", "projekt-lounge",
                          "projekt-buero-koordination", "projekt-buero-it-verbund"}
    assert rooms["projekt-besprechung"]["door"] == "closed" and rooms["projekt-besprechung"]["occupants"] == []
    assert rooms["projekt-lounge"]["occupants"] == [
        {"person": "altbach/anna.altbach", "user_id": "anna.altbach", "name": "Anna Albrecht", "municipality": "altbach",
         "guest": False,
         "status": "available", "status_text": "", "in_call": True}
    ]
    assert body["hallway"] == [
        {"person": "bergheim/ben.bergheim", "user_id": "ben.bergheim", "name": "Ben Berger", "municipality": "bergheim",
         "guest": False,
         "status": "busy", "status_text": "Haushaltsplan", "in_call": False}
    ]


@pytest.mark.parametrize(
    ("user", "municipality", "roles", "floor"),
    [
        ("anna.altbach", "altbach", ("staff",), "bergheim-eg"),  # another town's own floor
        ("anna.altbach", "altbach", ("staff",), FERNDORF_FLOOR),  # outside the cooperation
        ("gast.altbach", "altbach", ("guest",), FLOOR),  # guests see no cooperation floors
        ("frida.ferndorf", "ferndorf", ("staff",), FLOOR),
        ("anna.altbach", "altbach", ("staff",), "no-such-floor"),
    ],
)
async def test_occupancy_answers_exactly_like_the_floor_endpoint_for_invisible_floors(
    office: OfficeServer, user: str, municipality: str, roles: tuple[str, ...], floor: str
) -> None:
    sven = await person(office, "sven.seefeld", "seefeld")
    await sven.move(FLOOR)
    token = tok(office, user, municipality, roles=roles)
    occ_status, occ = await get(office, token, f"/api/v1/floors/{floor}/occupancy")
    floor_status, plain = await get(office, token, f"/api/v1/floors/{floor}")
    assert (occ_status, occ) == (floor_status, plain) == (404, plain)
    assert occ["error"]["code"] == "not_found" and "sven" not in str(occ)


async def test_occupancy_needs_a_token(office: OfficeServer) -> None:
    status, body = await get(office, "", f"/api/v1/floors/{FLOOR}/occupancy")
    assert status == 401 and body["error"]["code"] == "unauthenticated"


# ---------------------------------------------------------------------- badge
async def test_a_badge_shows_status_and_a_visible_location(office: OfficeServer) -> None:
    ben = await person(office, "ben.bergheim", "bergheim", name="Ben Berger", department="Kämmerei")
    await ben.move(FLOOR, "projekt-lounge")
    await ben.set_status("away", "Mittagspause")
    anna = tok(office, "anna.altbach", "altbach")
    status, body = await get(office, anna, "/api/v1/municipalities/bergheim/users/ben.bergheim/badge")
    assert status == 200
    assert body["badge"] == {
        "person": "bergheim/ben.bergheim", "user_id": "ben.bergheim", "name": "Ben Berger", "municipality": "bergheim",
        "department": "Kämmerei",
        "job_title": None, "skills": [], "online": True, "status": "away", "status_text": "Mittagspause",
        "floor_id": FLOOR, "floor_name": "Projektetage Digitales Rathaus", "room_id": "projekt-lounge",
        "room_name": "Lounge", "in_call": False,
    }
    # On Bergheim's own floor Ben is still "away" for Anna, but not where.
    await ben.move("bergheim-eg", "bergheim-buero-tim")
    _, body = await get(office, anna, "/api/v1/municipalities/bergheim/users/ben.bergheim/badge")
    assert body["badge"]["online"] is True and body["badge"]["status"] == "away"
    assert (body["badge"]["floor_id"], body["badge"]["room_id"], body["badge"]["room_name"]) == (None, None, None)
    # Bergheim's colleagues see the room.
    _, body = await get(office, tok(office, "tim.bergheim", "bergheim"),
                        "/api/v1/municipalities/bergheim/users/ben.bergheim/badge")
    assert (body["badge"]["room_id"], body["badge"]["room_name"]) == ("bergheim-buero-tim", "Büro Tim Bauer (IT)")


async def test_nothing_about_people_of_an_invisible_municipality(office: OfficeServer) -> None:
    frida = await person(office, "frida.ferndorf", "ferndorf", skills=[NATURE])
    await frida.move(FERNDORF_FLOOR, "ferndorf-buero")
    anna = await person(office, "anna.altbach", "altbach")
    anna_token = tok(office, "anna.altbach", "altbach")
    unknown = await get(office, anna_token, "/api/v1/municipalities/altbach/users/nobody.altbach/badge")
    invisible = await get(office, anna_token, "/api/v1/municipalities/ferndorf/users/frida.ferndorf/badge")
    no_town = await get(office, anna_token, "/api/v1/municipalities/atlantis/users/frida.ferndorf/badge")
    # A user id online, but of another municipality than the path names.
    wrong_town = await get(office, anna_token, "/api/v1/municipalities/bergheim/users/anna.altbach/badge")
    assert unknown[0] == 404 and unknown[1]["error"]["code"] == "not_found"
    assert invisible == unknown == no_town == wrong_town
    # And the other way round, for a guest of Altbach: Bergheim is out of sight.
    guest = tok(office, "gast.altbach", "altbach", roles=("guest",))
    assert await get(office, guest, "/api/v1/municipalities/bergheim/users/ben.bergheim/badge") == unknown
    ok, body = await get(office, tok(office, "fritz.ferndorf", "ferndorf"),
                         "/api/v1/municipalities/ferndorf/users/frida.ferndorf/badge")
    assert ok == 200 and body["badge"]["room_id"] == "ferndorf-buero"
    assert await get(office, tok(office, "fritz.ferndorf", "ferndorf"),
                     "/api/v1/municipalities/altbach/users/anna.altbach/badge") == unknown
    assert anna.sio.connected


async def test_the_same_user_id_in_two_towns_has_two_badges_and_two_finder_cards(office: OfficeServer) -> None:
    altbach = await person(office, "m.mueller", "altbach", name="Max Müller", skills=[NATURE])
    lindenau = await person(office, "m.mueller", "lindenau", name="Marie Müller", skills=[NATURE])
    await altbach.move(FLOOR, "projekt-lounge")
    await altbach.set_status("busy", "Altbach")
    await lindenau.move("lindenau-eg")
    anna = tok(office, "anna.altbach", "altbach")
    _, mine = await get(office, anna, "/api/v1/municipalities/altbach/users/m.mueller/badge")
    _, theirs = await get(office, anna, "/api/v1/municipalities/lindenau/users/m.mueller/badge")
    assert (mine["badge"]["person"], mine["badge"]["name"], mine["badge"]["status"], mine["badge"]["room_id"]) == (
        "altbach/m.mueller", "Max Müller", "busy", "projekt-lounge")
    assert (theirs["badge"]["person"], theirs["badge"]["name"], theirs["badge"]["status"]) == (
        "lindenau/m.mueller", "Marie Müller", "available")
    assert theirs["badge"]["room_id"] is None and theirs["badge"]["floor_id"] is None  # Lindenau's own floor
    _, found = await get(office, anna, "/api/v1/people/search?skill=naturschutz")
    assert sorted((r["person"], r["status"]) for r in found["results"]) == [
        ("altbach/m.mueller", "busy"), ("lindenau/m.mueller", "available")]
    _, occupancy = await get(office, anna, f"/api/v1/floors/{FLOOR}/occupancy")
    lounge = next(r for r in occupancy["rooms"] if r["room_id"] == "projekt-lounge")
    assert [o["person"] for o in lounge["occupants"]] == ["altbach/m.mueller"]


async def test_a_badge_as_svg_speaks_the_callers_language_and_escapes_text(office: OfficeServer) -> None:
    ben = await person(office, "ben.bergheim", "bergheim", name="Ben <b>Berger</b>")
    await ben.set_status("busy", "<script>alert(1)</script>")
    anna = tok(office, "anna.altbach", "altbach")
    path = "/api/v1/municipalities/bergheim/users/ben.bergheim/badge?format=svg"
    async with office.server_session(anna, **{"Accept-Language": "de-DE,de;q=0.9"}) as http:
        async with http.get(path) as resp:
            assert resp.status == 200 and resp.content_type == "image/svg+xml"
            assert resp.headers["Cache-Control"] == "no-store"
            svg = await resp.text()
        async with http.get("/api/v1/municipalities/ferndorf/users/frida.ferndorf/badge?format=svg") as resp:
            assert resp.status == 404 and resp.content_type == "image/svg+xml"
            assert "unbekannt" in await resp.text()
    assert "beschäftigt" in svg and "<script>" not in svg and "&lt;script&gt;" in svg and "<b>" not in svg
    async with office.server_session(anna, **{"Accept-Language": "en-GB"}) as http:
        async with http.get(path) as resp:
            assert ": busy" in await resp.text()
        async with http.get(path.replace("svg", "png")) as resp:
            assert resp.status == 400 and (await resp.json())["error"]["code"] == "invalid_payload"


# --------------------------------------------------------------------- finder
async def test_the_finder_ranks_by_availability_then_by_where_people_sit(office: OfficeServer) -> None:
    anna = await person(office, "anna.altbach", "altbach", skills=[NATURE])
    await anna.move(FLOOR)
    clara = await person(office, "clara.bergheim", "bergheim", name="Clara Conrad", skills=["Naturschutzrecht"])
    await clara.move(FLOOR)  # same floor as Anna, available
    await person(office, "mia.altbach", "altbach", name="Mia Maurer", department="Umwelt und Naturschutz")
    await person(office, "lea.lindenau", "lindenau", name="Lea Lorenz", skills=["naturschutz", "GIS"])
    tim = await person(office, "tim.bergheim", "bergheim", name="Tim Brandt", skills=[NATURE])
    await tim.move(FLOOR)
    await tim.set_status("busy")
    nina = await person(office, "nina.lindenau", "lindenau", name="Nina Neumann", job_title="Naturschutzwartin")
    await nina.move("lindenau-eg", "lindenau-buergerbuero")
    await nina.request("call.join", {"room_id": "lindenau-buergerbuero"})  # available, but in a call
    otto = await person(office, "otto.lindenau", "lindenau", name="Otto Olbrich", skills=[NATURE])
    await otto.set_status("do_not_disturb", "Klausur")
    await person(office, "frida.ferndorf", "ferndorf", skills=[NATURE])  # not visible to Anna
    await person(office, "gast.altbach", "altbach", roles=("guest",), skills=[NATURE])  # guests are not listed
    await person(office, "karl.altbach", "altbach", skills=["Haushalt"])  # does not match

    status, body = await get(office, tok(office, "anna.altbach", "altbach"), "/api/v1/people/search?q=naturschutz")
    assert status == 200 and body["ok"] is True
    order = [r["person"] for r in body["results"]]
    assert order == ["bergheim/clara.bergheim", "altbach/mia.altbach",  # available: floor, town,
                     "lindenau/lea.lindenau",  # elsewhere
                     "bergheim/tim.bergheim", "lindenau/nina.lindenau",  # busy / in a call: floor before elsewhere
                     "lindenau/otto.lindenau"]  # do not disturb
    first = body["results"][0]
    assert first == {
        "person": "bergheim/clara.bergheim", "user_id": "clara.bergheim", "name": "Clara Conrad",
        "municipality": "bergheim", "department": None,
        "job_title": None, "skills": ["Naturschutzrecht"], "status": "available", "status_text": "",
        "online": True, "floor_id": FLOOR, "floor_name": "Projektetage Digitales Rathaus", "room_id": None,
        "room_name": None, "in_call": False,
    }
    by_id = {r["person"]: r for r in body["results"]}
    nina = by_id["lindenau/nina.lindenau"]
    assert nina["in_call"] is True and nina["floor_id"] is None  # Lindenau's floor
    assert by_id["lindenau/otto.lindenau"]["status_text"] == "Klausur"


async def test_finder_filters_by_skill_department_and_job_title(office: OfficeServer) -> None:
    await person(office, "lea.lindenau", "lindenau", department="Bauamt", job_title="Sachbearbeiterin",
                 skills=["Naturschutz", "Bauleitplanung"])
    await person(office, "tim.bergheim", "bergheim", department="Bauamt", job_title="Amtsleiter", skills=["GIS"])
    await person(office, "mia.altbach", "altbach", department="Hauptamt", job_title="Sachbearbeiterin",
                 skills=["Straßenbau"])
    anna = tok(office, "anna.altbach", "altbach")

    async def ids(query: str) -> list[str]:
        status, body = await get(office, anna, "/api/v1/people/search?" + query)
        assert status == 200, body
        return sorted(r["person"] for r in body["results"])

    assert await ids("skill=bauleit") == ["lindenau/lea.lindenau"]
    assert await ids("department=BAUAMT") == ["bergheim/tim.bergheim", "lindenau/lea.lindenau"]
    assert await ids("job_title=sachbearbeiterin") == ["altbach/mia.altbach", "lindenau/lea.lindenau"]
    assert await ids("department=bauamt&job_title=sachbearbeiterin") == ["lindenau/lea.lindenau"]
    assert await ids("q=bauamt+gis") == ["bergheim/tim.bergheim"]  # every word must match
    assert await ids("q=strassenbau") == ["altbach/mia.altbach"]  # ß matches ss
    assert await ids("skill=bauamt") == []  # a skill filter looks at skills only
    assert len((await get(office, anna, "/api/v1/people/search?q=a&limit=2"))[1]["results"]) == 2


async def test_the_finder_sees_only_what_the_caller_may_see(office: OfficeServer) -> None:
    await person(office, "lea.lindenau", "lindenau", skills=[NATURE])
    await person(office, "mia.altbach", "altbach", skills=[NATURE])
    await person(office, "frida.ferndorf", "ferndorf", skills=[NATURE])

    async def ids(token: str) -> list[str]:
        status, body = await get(office, token, "/api/v1/people/search?skill=naturschutz")
        assert status == 200, body
        return sorted(r["person"] for r in body["results"])

    assert await ids(tok(office, "anna.altbach", "altbach")) == ["altbach/mia.altbach", "lindenau/lea.lindenau"]
    assert await ids(tok(office, "gast.altbach", "altbach", roles=("guest",))) == ["altbach/mia.altbach"]
    assert await ids(tok(office, "fritz.ferndorf", "ferndorf")) == ["ferndorf/frida.ferndorf"]
    assert await ids(tok(office, "frida.ferndorf", "ferndorf")) == []  # not herself


@pytest.mark.parametrize(
    ("query", "code", "status"),
    [
        ("", "invalid_payload", 400),
        ("q=++", "invalid_payload", 400),
        ("q=x&limit=0", "invalid_payload", 400),
        ("q=x&limit=51", "invalid_payload", 400),
        ("q=x&limit=many", "invalid_payload", 400),
        ("q=x&colour=blue", "invalid_payload", 400),
        ("q=" + "x" * 201, "invalid_payload", 400),
    ],
)
async def test_finder_refuses_bad_queries_with_the_error_shape(
    office: OfficeServer, query: str, code: str, status: int
) -> None:
    got, body = await get(office, tok(office, "anna.altbach", "altbach"), "/api/v1/people/search?" + query)
    assert (got, body["ok"], body["error"]["code"]) == (status, False, code)
    assert body["error"]["message"]


async def test_people_are_found_only_while_online_by_default(office: OfficeServer) -> None:
    lea = await person(office, "lea.lindenau", "lindenau", skills=[NATURE])
    anna = tok(office, "anna.altbach", "altbach")
    _, body = await get(office, anna, "/api/v1/people/search?skill=naturschutz")
    assert [r["person"] for r in body["results"]] == ["lindenau/lea.lindenau"]
    await lea.disconnect()

    async def forgotten() -> bool:
        status, _ = await get(office, anna, "/api/v1/municipalities/lindenau/users/lea.lindenau/badge")
        return status == 404

    await eventually(forgotten)  # the grace period ends, the profile goes with the presence
    _, body = await get(office, anna, "/api/v1/people/search?skill=naturschutz")
    assert body["results"] == []
    assert await office.runtime.presence.store.member(PersonId("lindenau/lea.lindenau")) is None


async def test_with_retention_offline_people_stay_findable_and_rank_last(
    start_server: StartServer, tmp_path: Path
) -> None:
    office = await start_server({**ferndorf_env(tmp_path), "PRESENCE_PRESENCE__GRACE_SECONDS": "0.2",
                                 "PRESENCE_PORTAL__DIRECTORY_RETENTION_DAYS": "30"})
    lea = await person(office, "lea.lindenau", "lindenau", name="Lea Lorenz", skills=[NATURE])
    otto = await person(office, "otto.lindenau", "lindenau", name="Otto Olbrich", skills=[NATURE])
    await otto.set_status("do_not_disturb")
    anna = tok(office, "anna.altbach", "altbach")
    await lea.disconnect()

    async def offline() -> dict | None:
        _, body = await get(office, anna, "/api/v1/municipalities/lindenau/users/lea.lindenau/badge")
        return body["badge"] if body["ok"] and not body["badge"]["online"] else None

    badge = await eventually(offline)
    assert badge["status"] == "offline" and badge["name"] == "Lea Lorenz" and badge["skills"] == [NATURE]
    assert (badge["person"], badge["user_id"]) == ("lindenau/lea.lindenau", "lea.lindenau")
    assert badge["floor_id"] is None and badge["in_call"] is False
    _, body = await get(office, anna, "/api/v1/people/search?skill=naturschutz")
    assert [(r["person"], r["status"]) for r in body["results"]] == [
        ("lindenau/otto.lindenau", "do_not_disturb"), ("lindenau/lea.lindenau", "offline")]


async def test_the_openapi_document_describes_what_the_portal_endpoints_answer(office: OfficeServer) -> None:
    await person(office, "lea.lindenau", "lindenau", skills=[NATURE])
    anna = tok(office, "anna.altbach", "altbach")
    _, doc = await get(office, "", "/openapi.json")
    paths = doc["paths"]
    assert {"/api/v1/floors/{floor_id}/occupancy", "/api/v1/people/search",
            "/api/v1/municipalities/{municipality_id}/users/{user_id}/badge"} <= set(paths)
    assert {p["name"] for p in paths["/api/v1/people/search"]["get"]["parameters"]} == {
        "q", "skill", "department", "job_title", "limit", "scope"}
    schemas = doc["components"]["schemas"]
    _, found = await get(office, anna, "/api/v1/people/search?skill=naturschutz")
    assert set(found["results"][0]) == set(schemas["PersonCard"]["properties"])
    _, badge = await get(office, anna, "/api/v1/municipalities/lindenau/users/lea.lindenau/badge")
    assert set(badge["badge"]) == set(schemas["PersonCard"]["properties"])
    _, occupancy = await get(office, anna, f"/api/v1/floors/{FLOOR}/occupancy")
    assert set(occupancy) == set(schemas["FloorOccupancy"]["properties"])
    assert set(occupancy["rooms"][0]) == set(schemas["RoomOccupancy"]["properties"])
