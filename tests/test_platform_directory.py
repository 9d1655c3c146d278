"""The platform directory beyond the cooperation, against real servers with real
Socket.IO clients: two cooperations (the demo's Vier Täler, and Zwei Ufer of
Ferndorf and Grunbach), opted-in specialists found with ``scope=platform`` by
their published skills only and never with a location, people who did not opt
in never found from outside, and rings across the cooperations' edge."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from presence_server.directory.service import DirectoryService
from presence_server.metrics import REGISTRY
from presence_server.portal_rest import DIRECTORY
from rooms.person import PersonId
from signalling.client import OfficeClient
from presence_server.config import load_settings
from tests.conftest import DEFAULT_CONFIG, DEMO_CAMPUS, OfficeServer, StartServer
from tests.support.doc_snippets import doc_snippet
from tests.test_portal_doc_examples import shape_mismatches
from tests.support.portal import eventually, get, person
from tests.support.redis_server import RedisServer

NATURE = "Naturschutzrecht"
FRIDA = "ferndorf/frida.ferndorf"
GERD = "grunbach/gerd.grunbach"
FERNDORF_OFFICE = ("ferndorf-eg", "ferndorf-buero")

_ZWEI_UFER_SEED = """

# -- added by the platform directory tests: a second cooperation --
[[municipalities]]
id = "ferndorf"
name = "Gemeinde Ferndorf"

[[municipalities]]
id = "grunbach"
name = "Gemeinde Grunbach"

[[cooperations]]
id = "zwei-ufer"
name = "Kooperation Zwei Ufer"
members = ["ferndorf", "grunbach"]

[[floors]]
id = "ferndorf-eg"
name = "Rathaus Ferndorf"
owner_kind = "municipality"
owner_id = "ferndorf"

  [[floors.rooms]]
  id = "ferndorf-buero"
  name = "Büro Umweltamt"
  kind = "office"
  rect = { x = 20, y = 20, w = 300, h = 220 }
  door = "open"

[[floors]]
id = "ufer-projekt"
name = "Projektetage Zwei Ufer"
owner_kind = "cooperation"
owner_id = "zwei-ufer"
"""


def zwei_ufer_env(tmp_path: Path) -> dict[str, str]:
    """The demo campus plus a second cooperation; Ferndorf and Grunbach publish
    nature-conservation law, Altbach publishes procurement law."""
    seed = tmp_path / "campus_two_cooperations.toml"
    seed.write_text(DEMO_CAMPUS.read_text(encoding="utf-8") + _ZWEI_UFER_SEED, encoding="utf-8")
    env = {"PRESENCE_CAMPUS__SEED_FILE": str(seed), "PRESENCE_PRESENCE__GRACE_SECONDS": "0.2",
           "PRESENCE_LIMITS__EVENTS_PER_SECOND": "1000", "PRESENCE_LIMITS__BURST": "1000"}
    for town in ("ferndorf", "grunbach"):
        key = f"PRESENCE_AUTH__MUNICIPALITIES__{town.upper()}"
        env[f"{key}__ALGORITHM"] = "HS256"
        env[f"{key}__SECRET"] = f"dev-only-{town}-secret-change-me-0000"
        env[f"{key}__DIRECTORY__PUBLISH_SKILLS"] = json.dumps([NATURE, "Vergaberecht"])
    env["PRESENCE_AUTH__MUNICIPALITIES__ALTBACH__DIRECTORY__PUBLISH_SKILLS"] = json.dumps(["Vergaberecht"])
    return env


@pytest.fixture
async def office(start_server: StartServer, tmp_path: Path) -> OfficeServer:
    return await start_server(zwei_ufer_env(tmp_path))


async def frida_at_her_desk(office: OfficeServer) -> OfficeClient:
    """A specialist of Zwei Ufer in her town's own office (a floor nobody of Vier Täler may see)."""
    frida = await person(office, "frida.ferndorf", "ferndorf", name="Frida Fink", department="Umweltamt",
                         job_title="Amtsleitung", skills=[NATURE, "GIS"])
    await frida.move(*FERNDORF_OFFICE)
    await frida.set_status("busy", "Gutachten Auwald")
    return frida


async def search(office: OfficeServer, token: str, query: str) -> list[dict[str, Any]]:
    status, body = await get(office, token, f"/api/v1/people/search?{query}")
    assert status == 200, body
    return body["results"]


# ------------------------------------------------------------------- finding
async def test_an_opted_in_specialist_of_another_cooperation_is_found_with_only_her_published_skill(
    office: OfficeServer,
) -> None:
    frida = await frida_at_her_desk(office)
    await person(office, "gerd.grunbach", "grunbach", name="Gerd Gruber", skills=[NATURE])  # did not opt in
    lea = await person(office, "lea.lindenau", "lindenau", name="Lea Lorenz", department="Bauamt", skills=[NATURE])
    await lea.move("projekt", "projekt-lounge")
    anna = office.token("anna.altbach", "altbach")

    assert await search(office, anna, "skill=naturschutzrecht&scope=platform") != []  # Lea, at least
    ack = await frida.request("profile.publish", {"skills": ["naturschutzRECHT"]})
    assert ack == {"ok": True, "published": [NATURE]}  # in her token's spelling

    # Within the cooperation nothing changes.
    assert [r["person"] for r in await search(office, anna, "skill=naturschutzrecht")] == ["lindenau/lea.lindenau"]
    found = await search(office, anna, "skill=naturschutzrecht&scope=platform")
    # Lea is available, Frida busy: the finder's ranking, across both.
    assert [r["person"] for r in found] == ["lindenau/lea.lindenau", FRIDA]
    lea_card, frida_card = found
    assert lea_card["department"] == "Bauamt" and lea_card["room_id"] == "projekt-lounge" and "platform" not in lea_card
    assert frida_card == {
        "person": FRIDA, "user_id": "frida.ferndorf", "name": "Frida Fink", "municipality": "ferndorf",
        "department": None, "job_title": None, "skills": [NATURE],
        "online": True, "status": "busy", "status_text": "",
        "floor_id": None, "floor_name": None, "room_id": None, "room_name": None,
        "in_call": False, "platform": True,
    }
    # Found only by what she published: not by her other skill, department or title.
    for query in ("skill=gis", "department=umweltamt", "job_title=amtsleitung", "q=Gutachten", "q=Umweltamt"):
        assert FRIDA not in [r["person"] for r in await search(office, anna, f"{query}&scope=platform")], query
    assert [r["person"] for r in await search(office, anna, "q=frida+naturschutz&scope=platform")] == [FRIDA]
    # Gerd has the skill, his town publishes it, but he did not opt in: never.
    for query in ("skill=naturschutzrecht", "q=gerd", "q=gruber"):
        assert GERD not in str(await search(office, anna, f"{query}&scope=platform")), query
    # His own cooperation finds him as always.
    assert GERD in [r["person"] for r in await search(office, office.token("fritz.ferndorf", "ferndorf"),
                                                          "skill=naturschutzrecht")]


def optins(change: str) -> float:
    return REGISTRY.get_sample_value("vo_platform_optins_total", {"municipality": "ferndorf", "change": change}) or 0.0


async def test_opting_out_removes_her_at_once(office: OfficeServer) -> None:
    frida = await frida_at_her_desk(office)
    anna = office.token("anna.altbach", "altbach")
    before = optins("published"), optins("withdrawn")
    await frida.request("profile.publish", {"skills": [NATURE]})
    assert [r["person"] for r in await search(office, anna, "q=frida&scope=platform")] == [FRIDA]
    assert (await frida.request("profile.publish", {"skills": []}))["published"] == []
    assert await search(office, anna, "q=frida&scope=platform") == []
    assert (optins("published"), optins("withdrawn")) == (before[0] + 1, before[1] + 1)


async def test_a_skill_she_no_longer_has_stops_counting(office: OfficeServer) -> None:
    frida = await frida_at_her_desk(office)
    anna = await person(office, "anna.altbach", "altbach")
    await frida.request("profile.publish", {"skills": [NATURE]})
    new_token = office.token("frida.ferndorf", "ferndorf", name="Frida Fink", skills=["GIS"])
    await frida.request("auth.refresh", {"token": new_token})  # her town's portal dropped the skill
    assert await search(office, office.token("anna.altbach", "altbach"), "q=frida&scope=platform") == []
    assert (await anna.call("call.ring", {"person": FRIDA}))["error"]["code"] == "not_found"


async def test_a_skill_the_town_stops_publishing_stops_counting(office: OfficeServer) -> None:
    frida = await frida_at_her_desk(office)
    await frida.request("profile.publish", {"skills": [NATURE]})
    running = office.server.app[DIRECTORY]
    anna = (await office.runtime.verifier.verify(office.token("anna.altbach", "altbach"))).actor
    # The same stored opt-in, read under a configuration that no longer publishes the skill.
    narrower = DirectoryService(office.runtime.presence, running.store, retention_days=0, online_ttl=60,
                                publish_skills={"ferndorf": ["Vergaberecht"]})
    assert [p.id for p, _ in await running.platform_people(anna)] == [FRIDA]
    assert await narrower.platform_people(anna) == []
    assert await narrower.is_platform_visible(anna, PersonId(FRIDA)) is False


@pytest.mark.parametrize(
    ("skills", "why"),
    [
        (["GIS"], "she has it, but Ferndorf does not publish it"),
        (["Vergaberecht"], "Ferndorf publishes it, but she does not have it"),
        ([NATURE, "Zauberei"], "one of them is not hers"),
    ],
)
async def test_only_skills_she_has_and_her_town_publishes_can_be_published(
    office: OfficeServer, skills: list[str], why: str
) -> None:
    frida = await frida_at_her_desk(office)
    ack = await frida.call("profile.publish", {"skills": skills})
    assert ack["ok"] is False and (ack["error"]["code"], ack["error"]["field"]) == ("invalid_payload", "skills"), why
    assert await search(office, office.token("anna.altbach", "altbach"), "q=frida&scope=platform") == []


async def test_malformed_publish_requests_are_refused_with_a_field(office: OfficeServer) -> None:
    frida = await frida_at_her_desk(office)
    for payload, field in (({}, "skills"), ({"skills": NATURE}, "skills"), ({"skills": [""]}, "skills.0"),
                           ({"skills": [NATURE], "all": True}, "all")):
        ack = await frida.call("profile.publish", payload)
        assert (ack["error"]["code"], ack["error"]["field"]) == ("invalid_payload", field), payload


async def test_guests_publish_nothing_and_find_nobody_beyond(office: OfficeServer) -> None:
    frida = await frida_at_her_desk(office)
    await frida.request("profile.publish", {"skills": [NATURE]})
    guest = await person(office, "gast.ferndorf", "ferndorf", roles=("guest",), skills=[NATURE])
    assert (await guest.call("profile.publish", {"skills": [NATURE]}))["error"]["code"] == "invalid_payload"
    visitor = office.token("gast.altbach", "altbach", roles=("guest",))
    assert await search(office, visitor, "skill=naturschutzrecht&scope=platform") == []
    ring = await (await person(office, "gast.altbach", "altbach", roles=("guest",))).call("call.ring", {"person": FRIDA})
    assert ring["error"]["code"] == "not_found"


async def test_the_rest_api_reads_and_sets_the_opt_in(office: OfficeServer) -> None:
    await frida_at_her_desk(office)
    token = office.token("frida.ferndorf", "ferndorf", skills=[NATURE, "GIS"])
    status, body = await get(office, token, "/api/v1/me/published-skills")
    assert (status, body) == (200, {"ok": True, "published": [], "publishable": [NATURE]})
    async with office.server_session(token) as http:
        async with http.put("/api/v1/me/published-skills", json={"skills": [NATURE]}) as resp:
            assert resp.status == 200 and await resp.json() == {"ok": True, "published": [NATURE],
                                                                 "publishable": [NATURE]}
        assert await search(office, office.token("anna.altbach", "altbach"), "q=frida&scope=platform") != []
        async with http.put("/api/v1/me/published-skills", json={"skills": ["GIS"]}) as resp:
            body = await resp.json()
            assert resp.status == 400 and body["error"]["code"] == "invalid_payload", body
        async with http.put("/api/v1/me/published-skills", data=b"not json") as resp:
            assert resp.status == 400 and (await resp.json())["error"]["code"] == "invalid_payload"
        async with http.put("/api/v1/me/published-skills", json={"skills": []}) as resp:
            assert (await resp.json())["published"] == []
    assert await search(office, office.token("anna.altbach", "altbach"), "q=frida&scope=platform") == []
    # Someone not online is not in the directory (retention 0): nothing to attach an opt-in to.
    absent = office.token("otto.ferndorf", "ferndorf", skills=[NATURE])
    async with office.server_session(absent) as http:
        async with http.put("/api/v1/me/published-skills", json={"skills": [NATURE]}) as resp:
            assert resp.status == 409 and (await resp.json())["error"]["code"] == "conflict"


async def test_the_opt_in_is_forgotten_with_her_directory_entry(office: OfficeServer) -> None:
    frida = await frida_at_her_desk(office)
    anna = office.token("anna.altbach", "altbach")
    await frida.request("profile.publish", {"skills": [NATURE]})
    await frida.disconnect()

    async def gone() -> bool:
        return await search(office, anna, "q=frida&scope=platform") == []

    await eventually(gone)
    back = await person(office, "frida.ferndorf", "ferndorf", skills=[NATURE])
    assert await search(office, anna, "q=frida&scope=platform") == []  # she opts in again if she wants
    assert (await back.request("profile.publish", {"skills": [NATURE]}))["published"] == [NATURE]


# ------------------------------------------------------------------- ringing
async def test_a_ring_from_another_cooperation_reaches_an_opted_in_specialist_without_revealing_her_floor(
    office: OfficeServer,
) -> None:
    frida = await frida_at_her_desk(office)
    gerd = await person(office, "gerd.grunbach", "grunbach", skills=[NATURE])
    await gerd.move("ufer-projekt")
    anna = await person(office, "anna.altbach", "altbach")
    await anna.move("projekt")

    refused = await anna.call("call.ring", {"person": FRIDA})
    assert refused["error"]["code"] == "not_found"  # not yet published
    await frida.request("profile.publish", {"skills": [NATURE]})
    ack = await anna.request("call.ring", {"person": FRIDA})
    assert "ferndorf-eg" not in json.dumps(ack) and "ferndorf-buero" not in json.dumps(ack)
    incoming = await frida.next_event("call.ring")
    assert incoming["ring"]["ring_id"] == ack["ring"]["ring_id"]
    assert incoming["ring"]["caller"]["person"] == "altbach/anna.altbach"
    answer = await frida.request("call.answer", {"ring_id": ack["ring"]["ring_id"], "accept": True})
    assert answer["call"]["members"] == ["altbach/anna.altbach", FRIDA]
    update = await anna.next_event("call.updated")
    assert update["room_id"] is None and "ferndorf-eg" not in json.dumps(update)
    # Gerd is on his cooperation's floor, has the skill, did not opt in: not found.
    assert (await anna.call("call.ring", {"person": GERD}))["error"]["code"] == "not_found"
    assert (await anna.call("call.note", {"person": GERD, "text": "Hallo"}))["error"]["code"] == "not_found"
    # And she can still not look into Ferndorf's town hall.
    assert (await anna.call("floor.watch", {"floor_id": "ferndorf-eg"}))["error"]["code"] == "not_found"


async def test_after_opting_out_she_can_no_longer_be_rung_from_outside(office: OfficeServer) -> None:
    frida = await frida_at_her_desk(office)
    anna = await person(office, "anna.altbach", "altbach")
    await frida.request("profile.publish", {"skills": [NATURE]})
    ring = (await anna.request("call.ring", {"person": FRIDA}))["ring"]
    await anna.request("call.cancel", {"ring_id": ring["ring_id"]})
    await frida.request("profile.publish", {"skills": []})
    assert (await anna.call("call.ring", {"person": FRIDA}))["error"]["code"] == "not_found"


async def test_is_platform_visible_is_what_the_lead_calls(office: OfficeServer) -> None:
    frida = await frida_at_her_desk(office)
    directory = office.server.app[DIRECTORY]
    anna = (await office.runtime.verifier.verify(office.token("anna.altbach", "altbach"))).actor
    guest = (await office.runtime.verifier.verify(office.token("g.altbach", "altbach", roles=("guest",)))).actor
    assert await directory.is_platform_visible(anna, PersonId(FRIDA)) is False
    await frida.request("profile.publish", {"skills": [NATURE]})
    assert await directory.is_platform_visible(anna, PersonId(FRIDA)) is True
    assert await directory.is_platform_visible(guest, PersonId(FRIDA)) is False
    assert await directory.is_platform_visible(anna, PersonId(GERD)) is False


# ------------------------------------------------------------------- cluster
@pytest.fixture
async def nodes(start_server: StartServer, redis_server: RedisServer, redis_prefix: str,
                tmp_path: Path) -> tuple[OfficeServer, OfficeServer]:
    env = {**zwei_ufer_env(tmp_path), "PRESENCE_REDIS__URL": redis_server.url, "PRESENCE_REDIS__PREFIX": redis_prefix}
    return await start_server(env), await start_server(env)


async def test_in_cluster_mode_an_opt_in_on_one_node_is_found_and_rung_from_the_other(
    nodes: tuple[OfficeServer, OfficeServer],
) -> None:
    a, b = nodes
    frida = await frida_at_her_desk(b)
    await person(b, "gerd.grunbach", "grunbach", skills=[NATURE])
    anna = await person(a, "anna.altbach", "altbach")
    anna_token = a.token("anna.altbach", "altbach")
    assert await search(a, anna_token, "skill=naturschutzrecht&scope=platform") == []
    await frida.request("profile.publish", {"skills": [NATURE]})
    found = await search(a, anna_token, "skill=naturschutzrecht&scope=platform")
    assert [(r["person"], r["skills"], r["floor_id"], r["status"]) for r in found] == [(FRIDA, [NATURE], None, "busy")]
    ring = (await anna.request("call.ring", {"person": FRIDA}))["ring"]
    assert (await frida.next_event("call.ring"))["ring"]["ring_id"] == ring["ring_id"]
    await anna.request("call.cancel", {"ring_id": ring["ring_id"]})
    assert (await anna.call("call.ring", {"person": GERD}))["error"]["code"] == "not_found"
    await frida.request("profile.publish", {"skills": []})
    assert await search(a, anna_token, "skill=naturschutzrecht&scope=platform") == []
    await frida.request("profile.publish", {"skills": [NATURE]})
    await frida.disconnect()  # gone on node b: node a no longer finds her, and the opt-in is gone

    async def gone() -> bool:
        return await search(a, anna_token, "q=frida&scope=platform") == []

    await eventually(gone)
    assert await a.server.app[DIRECTORY].store.published_people(now=0) == []


# ------------------------------------------------------------------- the docs
async def test_the_documented_platform_answer_has_the_real_shape(office: OfficeServer) -> None:
    frida = await frida_at_her_desk(office)
    await frida.request("profile.publish", {"skills": [NATURE]})
    _, real = await get(office, office.token("anna.altbach", "altbach"), "/api/v1/people/search?q=frida&scope=platform")
    documented = json.loads(doc_snippet("portal", "platform-finder-response"))
    assert real["results"] and shape_mismatches(documented, real) == []


def test_the_documented_publish_skills_table_loads(tmp_path: Path) -> None:
    config = tmp_path / "config.toml"
    config.write_text(
        DEFAULT_CONFIG.read_text(encoding="utf-8")
        + '\n[auth.municipalities.ferndorf]\nalgorithm = "HS256"\nsecret = "dev-only-ferndorf-secret-change-me-0000"\n\n'
        + doc_snippet("portal", "publish-skills-config"),
        encoding="utf-8",
    )
    settings = load_settings(config, env={})
    assert settings.auth.municipalities["ferndorf"].directory.publish_skills == [NATURE, "Vergaberecht"]
    assert settings.auth.municipalities["altbach"].directory.publish_skills == []  # nobody by default
