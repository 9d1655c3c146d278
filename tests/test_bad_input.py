"""Bad input gets a clear error and loses nothing.

Every event receives malformed, wrongly typed and oversized payloads; each gets a
structured error, and a bystander on the same server keeps being served throughout.
"""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from rooms.person import PersonId
from signalling.client import OfficeClient
from tests.conftest import OfficeServer, StartServer

FLOOR = "projekt"
ANNA = "altbach/anna.altbach"

# Payloads wrong for every event (no event takes a string, a list or a number).
WRONG_SHAPES: list[Any] = ["floor", ["a", "b"], 42, True, {"unexpected": 1}]

# Wrongly typed fields, per event.
WRONG_TYPES: dict[str, list[dict[str, Any]]] = {
    "floor.watch": [{"floor_id": 5}, {"floor_id": None}, {"floor_id": ""}, {"floor_id": "../etc"}],
    "floor.unwatch": [{"floor_id": ["x"]}],
    "presence.move": [{"floor_id": FLOOR, "room_id": 7}, {"room_id": "x"}, {"floor_id": {"a": 1}}],
    "presence.status": [{"status": "sleeping"}, {"status": "busy", "text": 5}, {"status": "busy", "scope": "all"}],
    "knock.send": [{"room_id": 1}, {"room_id": "r", "message": ["hi"]}],
    "knock.answer": [{"knock_id": "k", "admit": "yes"}, {"knock_id": "k"}, {"admit": True}],
    "knock.cancel": [{"knock_id": 3.5}],
    "auth.refresh": [{"token": 12}, {"token": ""}],
    "campus.get": [],
    "presence.leave": [],
    "call.join": [{"room_id": 3}, {"room": "x"}],
    "call.leave": [],
    # A person is "municipality/user_id": a bare user id, or a malformed municipality, is refused.
    "call.ring": [{"person": 5}, {"user": "x"}, {"user_id": "ben.bergheim"}, {"person": "ben.bergheim"},
                  {"person": "/ben.bergheim"}, {"person": "../ben.bergheim"}, {"person": "bergheim/"}],
    "call.answer": [{"ring_id": "r", "accept": "yes"}, {"ring_id": "r"}],
    "call.cancel": [{"ring_id": ["r"]}],
    "call.note": [{"person": "altbach/u", "text": 3}, {"text": "hi"}, {"person": "u", "text": "hi"},
                  {"user_id": "altbach/u", "text": "hi"}],
    "profile.publish": [{"skills": "Naturschutzrecht"}, {"skills": [5]}, {"skills": [""]}, {"skill": ["x"]},
                        {"skills": ["x" * 101]}, {"skills": ["x"] * 101}],
    "call.signal": [{"call_id": "c", "to": "altbach/u", "kind": "shout", "data": {}},
                    {"call_id": "c", "to": "altbach/u", "kind": "offer", "data": "sdp"},
                    {"call_id": "c", "to": "altbach/u"},
                    {"call_id": "c", "to": "u", "kind": "offer", "data": {}}],
    "project.create": [{"name": 5}, {"purpose": "no name"}, {"name": ""}, {"name": "x", "template": "castle"},
                       {"name": "x", "members": ["altbach"]}, {"name": "x", "members": {"persons": ["bare.id"]}},
                       {"name": "x", "members": {"municipalities": [7]}}, {"name": "x", "ends_at": "tomorrow"}],
    "project.list": [],
    "project.update": [{"name": "x"}, {"project_id": 5}, {"project_id": "p", "members": "altbach/u"},
                       {"project_id": "p", "coordinators": ["u"]}, {"project_id": "p", "ends_at": [1]}],
    "invitation.create": [{"project_id": "p", "display_name": 5}, {"project_id": "p"}, {"display_name": "Gast"},
                          {"project_id": "p", "display_name": "Gast", "max_uses": "1"},
                          {"project_id": "p", "display_name": "Gast", "max_uses": 0},
                          {"project_id": "p", "display_name": "x" * 81}],
    "invitation.list": [{"project_id": 1}, {"project": "p"}],
    "invitation.revoke": [{"project_id": "p"}, {"project_id": "p", "invitation_id": ["i"]}],
}


def is_structured_error(ack: Any, *codes: str) -> bool:
    return (
        isinstance(ack, dict)
        and ack.get("ok") is False
        and ack["error"]["code"] in codes
        and isinstance(ack["error"]["message"], str)
        and ack["error"]["message"] != ""
    )


async def test_every_event_refuses_malformed_and_wrongly_typed_payloads(start_server: StartServer) -> None:
    # The barrage is ~80 requests: lift the rate limit, which has its own test.
    office = await start_server({"PRESENCE_LIMITS__EVENTS_PER_SECOND": "10000", "PRESENCE_LIMITS__BURST": "10000"})
    attacker = await office.client("mal.seefeld", "seefeld")
    bystander = await office.client("anna.altbach", "altbach")
    watcher = await office.client("ben.bergheim", "bergheim")
    await watcher.watch(FLOOR)
    events = office.runtime.gateway.events
    assert set(WRONG_TYPES) == set(events), "every event needs its wrong-type cases"

    for round_no, event in enumerate(events):
        for payload in WRONG_SHAPES + WRONG_TYPES[event]:
            ack = await attacker.call(event, payload)
            assert is_structured_error(ack, "invalid_payload"), (event, payload, ack)
        # The bystander is served between every event's barrage.
        await bystander.move(FLOOR)
        await bystander.set_status("busy", f"Runde {round_no}")
        await watcher.until_view(FLOOR, lambda v, n=round_no: v.members.get(ANNA, {}).get("text") == f"Runde {n}")
    assert (await office.runtime.presence.store.member(PersonId("seefeld/mal.seefeld"))).floor_id is None


async def test_invalid_payload_names_the_field(office: OfficeServer) -> None:
    client = await office.client("anna.altbach", "altbach")
    ack = await client.call("presence.status", {"status": "busy", "text": 5})
    assert ack["error"]["code"] == "invalid_payload" and ack["error"]["field"] == "text"
    long_text = {"status": "busy", "text": "x" * 141}  # over the configured 140
    ack = await client.call("presence.status", long_text)
    assert ack["error"]["code"] == "invalid_payload" and "140" in ack["error"]["message"]


async def test_oversized_payloads_are_refused_with_their_limit(office: OfficeServer) -> None:
    client = await office.client("anna.altbach", "altbach")
    limit = office.settings.limits.max_event_bytes
    for event in office.runtime.gateway.events:
        ack = await client.call(event, {"floor_id": "x" * (limit + 10)})
        assert is_structured_error(ack, "payload_too_large"), (event, ack)
        assert ack["error"]["limit"] == limit
    assert (await client.move(FLOOR))["floor_id"] == FLOOR  # still served


async def test_the_size_limit_counts_bytes_not_characters(office: OfficeServer) -> None:
    client = await office.client("anna.altbach", "altbach")
    limit = office.settings.limits.max_event_bytes
    umlauts = "ä" * (limit // 2 + 10)  # fewer characters than the limit, more bytes (2 each in UTF-8)
    ack = await client.call("presence.status", {"status": "busy", "text": umlauts})
    assert is_structured_error(ack, "payload_too_large")


async def test_unknown_events_count_against_the_rate_limit(start_server: StartServer) -> None:
    office = await start_server({"PRESENCE_LIMITS__EVENTS_PER_SECOND": "1", "PRESENCE_LIMITS__BURST": "3"})
    client = await office.client("mal.seefeld", "seefeld")
    acks = [await client.call("no.such.event") for _ in range(5)]
    assert [a["error"]["code"] for a in acks].count("rate_limited") >= 2


async def test_more_than_one_argument_binary_and_unknown_events_get_errors(office: OfficeServer) -> None:
    client = await office.client("anna.altbach", "altbach")
    ack = await client.sio.call("presence.move", ({"floor_id": FLOOR}, {"extra": 1}), timeout=5)
    assert is_structured_error(ack, "invalid_payload")
    ack = await client.call("presence.move", {"floor_id": FLOOR, "room_id": b"\x00\x01"})
    assert is_structured_error(ack, "invalid_payload")
    ack = await client.call("floor.explode", {"floor_id": FLOOR})
    assert is_structured_error(ack, "unknown_event")
    ack = await client.call("knock.answer", {"knock_id": "k-doesnotexist", "admit": True})
    assert is_structured_error(ack, "not_found")


async def test_german_clients_get_german_messages(office: OfficeServer) -> None:
    client = await office.client("anna.altbach", "altbach", lang="de")
    ack = await client.call("presence.move", {"floor_id": FLOOR, "room_id": "projekt-besprechung"})
    assert ack["error"]["code"] == "knock_required"
    assert ack["error"]["message"].startswith("Die Tür ist geschlossen")


async def test_a_flood_is_rate_limited_and_the_flooder_recovers(start_server: StartServer) -> None:
    office = await start_server({"PRESENCE_LIMITS__EVENTS_PER_SECOND": "5", "PRESENCE_LIMITS__BURST": "10"})
    flooder = await office.client("mal.seefeld", "seefeld")
    acks = await asyncio.gather(*(flooder.call("campus.get") for _ in range(30)))
    limited = [a for a in acks if not a["ok"]]
    assert len([a for a in acks if a["ok"]]) <= 11 and limited
    assert all(is_structured_error(a, "rate_limited") for a in limited)

    async def served_again() -> None:
        while not (await flooder.call("campus.get"))["ok"]:
            await asyncio.sleep(0.1)

    await asyncio.wait_for(served_again(), timeout=3)


async def test_a_frame_beyond_the_transport_cap_drops_only_that_connection(office: OfficeServer) -> None:
    bystander = await office.client("anna.altbach", "altbach")
    attacker = await office.client("mal.seefeld", "seefeld")
    disconnected = asyncio.Event()
    attacker.sio.on("disconnect", lambda *a: disconnected.set())
    await attacker.sio.emit("presence.move", {"floor_id": "x" * 2_000_000})
    await asyncio.wait_for(disconnected.wait(), timeout=5)
    assert (await bystander.move(FLOOR))["floor_id"] == FLOOR


# ------------------------------------------------------------------------ REST
@pytest.mark.parametrize(
    ("method", "path", "body", "status", "code"),
    [
        ("POST", "/api/v1/floors", b"{not json", 400, "invalid_payload"),
        ("POST", "/api/v1/floors", b'{"name": 5, "owner_kind": "municipality", "owner_id": "altbach"}', 400,
         "invalid_payload"),
        ("POST", "/api/v1/floors", b'{"name": "A", "owner_kind": "municipality", "owner_id": "altbach", "x": 1}',
         400, "invalid_payload"),
        ("POST", "/api/v1/floors", b"[]", 400, "invalid_payload"),
        ("PATCH", "/api/v1/rooms/altbach-teekueche", b'{"capacity": "viele"}', 400, "invalid_payload"),
        ("PATCH", "/api/v1/rooms/altbach-teekueche", b'{"capacity": 100000}', 400, "invalid_payload"),
        ("PATCH", "/api/v1/rooms/altbach-teekueche", b'{"rect": {"x": 990, "y": 0, "w": 100, "h": 100}}', 400,
         "invalid_payload"),
        ("POST", "/api/v1/floors", b'{"name": "' + b"x" * 100_000 + b'"}', 413, "payload_too_large"),
        ("GET", "/api/v1/nothing-here", None, 404, "not_found"),
        ("PUT", "/api/v1/campus", b"{}", 405, "invalid_payload"),
    ],
)
async def test_rest_refuses_bad_bodies_with_structured_errors(
    office: OfficeServer, method: str, path: str, body: bytes | None, status: int, code: str
) -> None:
    admin = office.token("anna.altbach", "altbach", roles=("staff", "admin"))
    before = await office.runtime.campus._store.load()
    async with office.server_session(admin, **{"Content-Type": "application/json"}) as http:
        async with http.request(method, path, data=body) as resp:
            assert resp.status == status
            payload = await resp.json()
    assert payload["ok"] is False and payload["error"]["code"] == code and payload["error"]["message"]
    assert await office.runtime.campus._store.load() == before
