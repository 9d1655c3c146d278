"""Edges where the server moves people or identities change under them."""

from __future__ import annotations

import time

import pytest

from rooms.person import PersonId
from signalling.client import ConnectRefused, OfficeClient, RequestError
from tests.conftest import OfficeServer, StartServer

FLOOR = "projekt"
MEETING = "projekt-besprechung"
ANNA = PersonId("altbach/anna.altbach")


async def test_a_deleted_floor_tells_its_people_and_unsubscribes_its_watchers(office: OfficeServer) -> None:
    admin_token = office.token("anna.altbach", "altbach", roles=("staff", "admin"))
    async with office.server_session(admin_token) as http:
        body = {"id": "anbau", "name": "Anbau", "owner_kind": "municipality", "owner_id": "altbach"}
        async with http.post("/api/v1/floors", json=body) as resp:
            assert resp.status == 201
    jan = await office.client("jan.altbach", "altbach")
    view = await jan.watch("anbau")
    await jan.move("anbau")
    async with office.server_session(admin_token) as http:
        async with http.delete("/api/v1/floors/anbau") as resp:
            assert resp.status == 200
    where = await jan.next_event("presence.location")
    assert where == {"floor_id": None, "room_id": None, "reason": "floor_removed"}
    await jan.until_view("anbau", lambda v: v.removed)
    seq_at_removal = view.seq

    # Recreated under the same id by someone else: the old watcher hears nothing of it,
    # and the floor's sequence continues rather than restarting.
    seefeld_admin = office.token("sven.seefeld", "seefeld", roles=("staff", "admin"))
    async with office.server_session(seefeld_admin) as http:
        body = {"id": "anbau", "name": "Anbau Seefeld", "owner_kind": "municipality", "owner_id": "seefeld"}
        async with http.post("/api/v1/floors", json=body) as resp:
            assert resp.status == 201
    sven = await office.client("sven.seefeld", "seefeld")
    fresh = await sven.watch("anbau")
    await sven.move("anbau")
    await sven.until_view("anbau", lambda v: "seefeld/sven.seefeld" in v.members)
    assert fresh.seq > seq_at_removal
    await jan.set_status("busy")  # a later event on jan's socket, to order against
    assert [f for f in jan.pending_events("floor.diffs") if f["floor_id"] == "anbau"
            and any(d["seq"] > seq_at_removal for d in f["diffs"])] == []
    ack = await jan.call("floor.watch", {"floor_id": "anbau"})
    assert ack["error"]["code"] == "not_found"


async def test_a_removed_rooms_occupants_are_told_where_they_are(office: OfficeServer) -> None:
    lea = await office.client("lea.lindenau", "lindenau")
    await lea.move(FLOOR, MEETING)
    admin = office.token("ben.bergheim", "bergheim", roles=("staff", "admin"))
    async with office.server_session(admin) as http:
        async with http.delete(f"/api/v1/rooms/{MEETING}") as resp:
            assert resp.status == 200
    assert await lea.next_event("presence.location") == {"floor_id": FLOOR, "room_id": None,
                                                         "reason": "room_removed"}


async def test_an_admitted_knocker_is_told_the_new_location(office: OfficeServer) -> None:
    lea = await office.client("lea.lindenau", "lindenau")
    await lea.move(FLOOR, MEETING)
    ben = await office.client("ben.bergheim", "bergheim")
    knock = await ben.knock(MEETING)
    await lea.answer(knock["knock_id"], admit=True)
    assert await ben.next_event("presence.location") == {"floor_id": FLOOR, "room_id": MEETING,
                                                         "reason": "admitted"}


async def test_a_reconnecting_occupant_finds_the_knock_that_came_meanwhile(start_server: StartServer) -> None:
    office = await start_server({"PRESENCE_PRESENCE__GRACE_SECONDS": "30"})
    lea = await office.client("lea.lindenau", "lindenau")
    await lea.move(FLOOR, MEETING)
    await lea.disconnect()  # reloading the page...
    ben = await office.client("ben.bergheim", "bergheim")
    knock = await ben.knock(MEETING)  # ...while ben knocks
    back = await office.client("lea.lindenau", "lindenau")
    assert [k["knock_id"] for k in back.ready["knocks"]["incoming"]] == [knock["knock_id"]]
    assert (await office.client("ben.bergheim", "bergheim")).ready["knocks"]["own"]["knock_id"] == knock["knock_id"]
    await back.answer(knock["knock_id"], admit=False)


async def test_a_guest_owner_is_not_asked_to_open_the_door(office: OfficeServer) -> None:
    admin = office.token("anna.altbach", "altbach", roles=("staff", "admin"))
    async with office.server_session(admin) as http:
        async with http.patch("/api/v1/rooms/altbach-besprechung", json={"owners": ["gast.altbach"]}) as resp:
            assert resp.status == 400  # owners are persons: a bare user id is refused
            assert (await resp.json())["error"]["code"] == "invalid_payload"
        async with http.patch("/api/v1/rooms/altbach-besprechung", json={"owners": ["altbach/gast.altbach"]}) as resp:
            assert resp.status == 200
            assert (await resp.json())["room"]["owners"] == ["altbach/gast.altbach"]
    await office.client("gast.altbach", "altbach", roles=("guest",))
    jan = await office.client("jan.altbach", "altbach")
    with pytest.raises(RequestError) as refused:
        await jan.knock("altbach-besprechung")
    assert refused.value.code == "nobody_to_answer"


async def test_a_refreshed_token_shows_the_new_name_to_the_floor(office: OfficeServer) -> None:
    ben = await office.client("ben.bergheim", "bergheim")
    await ben.watch(FLOOR)
    anna = await office.client("anna.altbach", "altbach")
    await anna.move(FLOOR)
    fresh = office.token("anna.altbach", "altbach", name="Dr. Anna Albrecht", department="Hauptamt")
    await anna.request("auth.refresh", {"token": fresh})
    view = await ben.until_view(FLOOR, lambda v: v.members.get(ANNA, {}).get("name") == "Dr. Anna Albrecht")
    assert view.members[ANNA]["profile"]["department"] == "Hauptamt"


async def test_a_token_of_the_same_user_id_from_another_town_is_not_a_refresh(office: OfficeServer) -> None:
    anna = await office.client("anna.altbach", "altbach")
    await anna.move(FLOOR)
    impostor = office.token("anna.altbach", "bergheim", name="Anna aus Bergheim")  # another town's provider
    ack = await anna.call("auth.refresh", {"token": impostor})
    assert ack["error"]["code"] == "forbidden"
    member = await office.runtime.presence.store.member(ANNA)
    assert member is not None and member.actor.municipality_id == "altbach" and member.actor.display_name == "Anna"


async def test_a_token_within_the_leeway_may_connect_and_act(office: OfficeServer) -> None:
    just_expired = office.token("anna.altbach", "altbach", ttl=60, now=time.time() - 70)  # 10 s ago
    client = OfficeClient(office.url, just_expired)
    office.clients.append(client)
    await client.connect()
    assert (await client.move(FLOOR))["floor_id"] == FLOOR


async def test_origins_are_enforced_per_municipality(start_server: StartServer) -> None:
    portal = "https://portal.altbach.example"
    office = await start_server({"PRESENCE_AUTH__MUNICIPALITIES__ALTBACH__ALLOWED_ORIGINS": f'["{portal}"]'})
    for user, municipality, allowed in (("anna.altbach", "altbach", True), ("sven.seefeld", "seefeld", False)):
        client = await office.client(user, municipality, connect=False)
        client.sio.connection_headers = {"Origin": portal}
        try:
            await client.sio.connect(office.url, headers={"Origin": portal}, auth={"token": client.token},
                                     transports=["websocket"], wait_timeout=5)
            connected = client.sio.connected
        except Exception:
            connected = False
        assert connected is allowed, municipality
        await client.disconnect()


async def test_dev_tokens_carry_the_requested_roles(office: OfficeServer) -> None:
    async with office.server_session() as http:
        async with http.get("/dev/token?municipality=altbach&user=a.b&name=A&role=staff&role=admin") as resp:
            token = (await resp.json())["token"]
    assert (await office.runtime.verifier.verify(token)).actor.is_admin


async def test_a_token_carrying_guest_never_administers_whatever_else_it_carries(office: OfficeServer) -> None:
    token = office.token("gast.altbach", "altbach", roles=("guest", "admin"))
    assert not (await office.runtime.verifier.verify(token)).actor.is_admin
    async with office.server_session(token) as http:
        async with http.patch("/api/v1/rooms/altbach-besprechung", json={"door": "open"}) as resp:
            assert resp.status == 403, await resp.text()
            assert (await resp.json())["error"]["code"] == "forbidden"
        body = {"id": "gastbau", "name": "Gastbau", "owner_kind": "municipality", "owner_id": "altbach"}
        async with http.post("/api/v1/floors", json=body) as resp:
            assert resp.status == 403, await resp.text()
        async with http.get("/api/v1/rooms/altbach-besprechung") as resp:
            assert (await resp.json())["room"]["door"] == "closed"
