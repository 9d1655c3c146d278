"""The authorization matrix: every event and REST call, tried by the wrong people.

Each refusal must carry the documented code, and nothing may change: the campus
in the store and the presence on the target floors are compared before and after.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

import pytest

from rooms.person import PersonId
from signalling.client import ConnectRefused, OfficeClient
from tests.conftest import OfficeServer, StartServer

ALTBACH_FLOOR = "altbach-eg"
ALTBACH_ROOM = "altbach-teekueche"
ALTBACH_CLOSED = "altbach-besprechung"  # closed, owner anna.altbach
SHARED_FLOOR = "projekt"


async def world(office: OfficeServer) -> dict[str, Any]:
    """What must not change: the stored campus and presence on the floors involved."""
    data = await office.runtime.campus._store.load()  # the store itself, not the cache
    presence = office.runtime.presence
    return {
        "campus": data,
        "floors": {f: await presence.store.snapshot(f) for f in (ALTBACH_FLOOR, SHARED_FLOOR)},
        "knocks": sorted(k.id for k in office.runtime.knocks.store.book.pending()),
    }


@pytest.mark.parametrize(
    ("token_kind", "code"),
    [("none", "unauthenticated"), ("garbage", "unauthenticated"), ("expired", "token_expired"),
     ("unknown_municipality", "unauthenticated")],
)
async def test_connect_without_a_valid_token_is_refused_with_its_code(
    office: OfficeServer, token_kind: str, code: str
) -> None:
    tokens = {
        "none": "",
        "garbage": "not.a.jwt",
        "expired": office.token("anna.altbach", "altbach", ttl=60, now=time.time() - 3600),
    }
    if token_kind == "unknown_municipality":
        # Signed with altbach's real secret but claiming a municipality nobody configured.
        import jwt

        secret = office.settings.auth.municipalities["altbach"].secret.get_secret_value()
        tokens[token_kind] = jwt.encode(
            {"sub": "x", "name": "X", "municipality": "nowhere", "roles": ["staff"], "exp": time.time() + 60},
            secret,
            algorithm="HS256",
        )
    client = OfficeClient(office.url, tokens[token_kind])
    with pytest.raises(ConnectRefused) as refused:
        await client.connect()
    assert refused.value.code == code
    assert office.runtime.gateway.session_count == 0


async def pending_knock_on_altbach(office: OfficeServer) -> tuple[OfficeClient, str]:
    anna = await office.client("anna.altbach", "altbach")
    await anna.move(ALTBACH_FLOOR, ALTBACH_CLOSED)
    jan = await office.client("jan.altbach", "altbach")
    knock = await jan.knock(ALTBACH_CLOSED)
    return anna, knock["knock_id"]


# (event, payload, expected code for a staff member of another municipality)
CROSS_TENANT_EVENTS: list[tuple[str, dict[str, Any], str]] = [
    ("floor.watch", {"floor_id": ALTBACH_FLOOR}, "not_found"),
    ("presence.move", {"floor_id": ALTBACH_FLOOR}, "not_found"),
    ("presence.move", {"floor_id": ALTBACH_FLOOR, "room_id": ALTBACH_ROOM}, "not_found"),
    # A floor they may see with a room of a floor they may not: the room does not exist
    # for them (§8), rather than "not_on_floor", which would confirm that it does.
    ("presence.move", {"floor_id": SHARED_FLOOR, "room_id": ALTBACH_ROOM}, "not_found"),
    ("knock.send", {"room_id": ALTBACH_CLOSED}, "not_found"),
    ("knock.answer", {"knock_id": "<knock>", "admit": True}, "forbidden"),
    ("knock.cancel", {"knock_id": "<knock>"}, "forbidden"),
]


async def test_another_municipalitys_staff_can_touch_nothing_of_altbach(office: OfficeServer) -> None:
    _, knock_id = await pending_knock_on_altbach(office)
    before = await world(office)
    sven = await office.client("sven.seefeld", "seefeld")
    for event, payload, code in CROSS_TENANT_EVENTS:
        payload = {k: (knock_id if v == "<knock>" else v) for k, v in payload.items()}
        ack = await sven.call(event, payload)
        assert ack["ok"] is False and ack["error"]["code"] == code, (event, ack)
    campus = (await sven.request("campus.get"))["campus"]
    assert ALTBACH_FLOOR not in {f["id"] for f in campus["floors"]}
    assert SHARED_FLOOR in {f["id"] for f in campus["floors"]}
    assert await world(office) == before


async def test_a_guest_sees_only_the_host_municipality_and_answers_no_knocks(office: OfficeServer) -> None:
    anna, knock_id = await pending_knock_on_altbach(office)
    before = await world(office)
    guest = await office.client("gast.altbach", "altbach", roles=("guest",))
    for event, payload, code in [
        ("floor.watch", {"floor_id": SHARED_FLOOR}, "not_found"),
        ("presence.move", {"floor_id": SHARED_FLOOR}, "not_found"),
        ("presence.move", {"floor_id": ALTBACH_FLOOR, "room_id": "projekt-lounge"}, "not_found"),
        ("knock.send", {"room_id": "projekt-besprechung"}, "not_found"),
        ("knock.answer", {"knock_id": knock_id, "admit": True}, "forbidden"),
        ("knock.cancel", {"knock_id": knock_id}, "forbidden"),
    ]:
        ack = await guest.call(event, payload)
        assert ack["ok"] is False and ack["error"]["code"] == code, (event, ack)
    assert await world(office) == before
    # Within the host municipality a guest may look and walk like anyone.
    assert (await guest.watch(ALTBACH_FLOOR)).floor["id"] == ALTBACH_FLOOR
    campus = (await guest.request("campus.get"))["campus"]
    assert {f["id"] for f in campus["floors"]} == {ALTBACH_FLOOR}


async def test_an_expired_token_stops_requests_until_it_is_refreshed(start_server: StartServer) -> None:
    office = await start_server({"PRESENCE_AUTH__LEEWAY_SECONDS": "0"})
    # 2 s: minted in whole seconds, a 1 s token may be spent before the connect.
    anna = OfficeClient(office.url, office.token("anna.altbach", "altbach", ttl=2))
    office.clients.append(anna)
    await anna.connect()

    async def refused_as_expired() -> dict[str, Any]:
        while True:  # poll the real server until the token has run out (bounded below)
            ack = await anna.call("presence.move", {"floor_id": ALTBACH_FLOOR})
            if not ack["ok"]:
                return ack
            await anna.call("presence.leave")
            await asyncio.sleep(0.1)

    ack = await asyncio.wait_for(refused_as_expired(), timeout=8)
    assert ack["error"]["code"] == "token_expired"
    assert anna.ready is not None
    member = await office.runtime.presence.store.member(PersonId(anna.person))
    assert member is not None and member.floor_id is None  # online, and on no floor: the move was refused
    other = office.token("ben.bergheim", "bergheim")
    assert (await anna.call("auth.refresh", {"token": other}))["error"]["code"] == "forbidden"
    await anna.request("auth.refresh", {"token": office.token("anna.altbach", "altbach")})
    assert (await anna.move(ALTBACH_FLOOR))["floor_id"] == ALTBACH_FLOOR


# ------------------------------------------------------------------ REST matrix
ROOM_BODY = {"name": "Neu", "kind": "office", "rect": {"x": 700, "y": 400, "w": 100, "h": 100}}
REST_CALLS: list[tuple[str, str, dict[str, Any] | None]] = [
    ("POST", "/api/v1/floors", {"name": "Neu", "owner_kind": "municipality", "owner_id": "altbach"}),
    ("PATCH", f"/api/v1/floors/{ALTBACH_FLOOR}", {"name": "Umbenannt"}),
    ("DELETE", f"/api/v1/floors/{ALTBACH_FLOOR}", None),
    ("POST", f"/api/v1/floors/{ALTBACH_FLOOR}/rooms", ROOM_BODY),
    ("PATCH", f"/api/v1/rooms/{ALTBACH_ROOM}", {"door": "locked"}),
    ("DELETE", f"/api/v1/rooms/{ALTBACH_ROOM}", None),
    ("GET", f"/api/v1/floors/{ALTBACH_FLOOR}", None),
    ("GET", f"/api/v1/rooms/{ALTBACH_ROOM}", None),
    ("GET", "/api/v1/campus", None),
]
WRITES = REST_CALLS[:6]


def identities(office: OfficeServer) -> dict[str, str | None]:
    return {
        "none": None,
        "expired": office.token("anna.altbach", "altbach", roles=("staff", "admin"), ttl=60, now=time.time() - 3600),
        "other_admin": office.token("sven.seefeld", "seefeld", roles=("staff", "admin")),
        "guest": office.token("gast.altbach", "altbach", roles=("guest",)),
        "staff": office.token("jan.altbach", "altbach"),
    }


def expected(who: str, method: str, path: str) -> tuple[int, str | None]:
    """The documented answer of each identity to each call (None: allowed)."""
    if who == "none":
        return 401, "unauthenticated"
    if who == "expired":
        return 401, "token_expired"
    if path == "/api/v1/campus":
        return 200, None  # everyone signed in sees *their* campus
    if who == "other_admin":
        if path == "/api/v1/floors":
            return 403, "forbidden"  # municipalities are public; administering them is not
        return 404, "not_found"  # altbach's floors do not exist for seefeld
    if method == "GET":
        return 200, None  # guest and staff of altbach may look
    return 403, "forbidden"  # visible, but not theirs to administer


async def test_rest_calls_by_the_wrong_people_are_refused_and_change_nothing(office: OfficeServer) -> None:
    before = await world(office)
    for who, token in identities(office).items():
        async with office.server_session(token) as http:
            for method, path, body in REST_CALLS:
                async with http.request(method, path, json=body) as resp:
                    status, code = expected(who, method, path)
                    payload = await resp.json()
                    assert resp.status == status, (who, method, path, payload)
                    if code is None:
                        assert payload["ok"] is True
                    else:
                        assert payload["ok"] is False and payload["error"]["code"] == code, (who, method, path)
                        assert payload["error"]["message"]
                if who == "other_admin" and path == "/api/v1/campus":
                    assert ALTBACH_FLOOR not in {f["id"] for f in payload["campus"]["floors"]}
    assert await world(office) == before


async def test_the_owning_admin_may_do_what_the_others_may_not(office: OfficeServer) -> None:
    """The positive control of the matrix: the same calls succeed for altbach's admin."""
    admin = office.token("anna.altbach", "altbach", roles=("staff", "admin"))
    async with office.server_session(admin) as http:
        # Deletions last and the floor's after its room's, so each call finds what it works on.
        for method, path, body in sorted(WRITES, key=lambda c: (c[0] == "DELETE", c[1].startswith("/api/v1/floors"))):
            async with http.request(method, path, json=body) as resp:
                assert resp.status in (200, 201), (method, path, await resp.text())
    assert office.runtime.campus.floor(ALTBACH_FLOOR) is None  # deleted last
    assert office.runtime.campus.room(ALTBACH_ROOM) is None


@pytest.mark.parametrize(
    ("origin", "allowed"),
    [
        (None, True),  # not a browser
        ("<own>", True),  # the server's own pages, whatever the port
        ("http://localhost:8080", False),  # the development port, but not this server's: not listed any more
        ("https://evil.example", False),
    ],
)
async def test_browser_origins_must_be_the_servers_own_or_configured(
    office: OfficeServer, origin: str | None, allowed: bool
) -> None:
    import socketio

    headers = {} if origin is None else {"Origin": office.url if origin == "<own>" else origin}
    sio = socketio.AsyncClient(reconnection=False)
    try:
        await sio.connect(office.url, headers=headers, auth={"token": office.token("anna.altbach", "altbach")},
                          transports=["websocket"], wait_timeout=5)
        connected = sio.connected
    except socketio.exceptions.ConnectionError:
        connected = False
    finally:
        await sio.disconnect()
    assert connected is allowed
