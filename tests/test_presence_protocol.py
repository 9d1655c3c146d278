"""Presence over the real protocol: real python-socketio clients against a real server."""

from __future__ import annotations

import asyncio

import pytest

from rooms.person import PersonId
from signalling.client import OfficeClient, RequestError
from tests.conftest import OfficeServer, StartServer

FLOOR = "projekt"  # the cooperation's shared floor
PROJECT_ROOM = "projekt-raum-digitales-rathaus"  # open door
LOUNGE = "projekt-lounge"
ANNA, BEN = PersonId("altbach/anna.altbach"), PersonId("bergheim/ben.bergheim")


def seqs(frames: list[dict]) -> list[int]:
    return [d["seq"] for f in frames for d in f["diffs"]]


async def test_users_of_two_municipalities_see_each_others_joins_walks_and_status_in_order(office: OfficeServer) -> None:
    anna = await office.client("anna.altbach", "altbach")
    ben = await office.client("ben.bergheim", "bergheim")
    view_b = await ben.watch(FLOOR)
    view_a = await anna.watch(FLOOR)
    start = view_b.seq

    await anna.move(FLOOR)  # the hallway
    await ben.move(FLOOR, LOUNGE)
    await anna.move(FLOOR, PROJECT_ROOM)
    await anna.set_status("busy", "Haushaltsplan")
    await ben.set_status("away")

    def settled(v) -> bool:
        a, b = v.members.get(ANNA), v.members.get(BEN)
        return bool(a and b and a["room_id"] == PROJECT_ROOM and a["status"] == "busy" and b["status"] == "away")

    await ben.until_view(FLOOR, settled)
    await anna.until_view(FLOOR, settled)
    assert view_a.as_comparable() == view_b.as_comparable()

    frames = ben.pending_events("floor.diffs")
    received = [d for f in frames for d in f["diffs"] if d["seq"] > start]
    assert [d["seq"] for d in received] == list(range(start + 1, start + 1 + len(received)))
    kinds = [(d["type"], d.get("person") or d.get("member", {}).get("person")) for d in received]
    assert kinds == [
        ("joined", ANNA),
        ("joined", BEN),
        ("moved", ANNA),
        ("status", ANNA),
        ("status", BEN),
    ]
    member = view_b.members[ANNA]
    assert member["municipality"] == "altbach" and member["user_id"] == "anna.altbach" and member["text"] == "Haushaltsplan"


async def test_a_user_with_two_sessions_is_one_presence_and_closing_one_emits_no_leave(office: OfficeServer) -> None:
    ben = await office.client("ben.bergheim", "bergheim")
    view = await ben.watch(FLOOR)
    tab1 = await office.client("anna.altbach", "altbach")
    await tab1.move(FLOOR, LOUNGE)
    tab2 = await office.client("anna.altbach", "altbach")
    # The second tab inherits the presence: same place, no new join.
    assert tab2.ready["location"] == {"floor_id": FLOOR, "room_id": LOUNGE}
    await tab2.set_status("busy")
    await tab1.disconnect()
    await tab2.set_status("available", "zurück")  # a later change, delivered in order after any leave
    await ben.until_view(FLOOR, lambda v: v.members.get(ANNA, {}).get("text") == "zurück")

    diffs = [d for f in ben.pending_events("floor.diffs") for d in f["diffs"] if d["seq"] > 0]
    anna = [d for d in diffs if d.get("person") == ANNA or d.get("member", {}).get("person") == ANNA]
    assert [d["type"] for d in anna] == ["joined", "status", "status"]
    assert list(view.members) == [ANNA]


async def test_reconnecting_within_the_grace_period_emits_nothing_to_others(start_server: StartServer) -> None:
    office = await start_server({"PRESENCE_PRESENCE__GRACE_SECONDS": "30"})
    ben = await office.client("ben.bergheim", "bergheim")
    await ben.watch(FLOOR)
    anna = await office.client("anna.altbach", "altbach")
    await anna.move(FLOOR, PROJECT_ROOM)
    await anna.set_status("do_not_disturb", "Klausur")
    await ben.until_view(FLOOR, lambda v: v.members.get(ANNA, {}).get("status") == "do_not_disturb")
    ben.pending_events("floor.diffs")

    await anna.disconnect()  # a page reload...
    again = await office.client("anna.altbach", "altbach")  # ...and back
    assert again.ready["location"] == {"floor_id": FLOOR, "room_id": PROJECT_ROOM}
    assert again.ready["me"]["status"] == "do_not_disturb" and again.ready["me"]["text"] == "Klausur"
    await again.set_status("available")
    frame = await ben.next_event("floor.diffs")
    assert [(d["type"], d["status"]) for d in frame["diffs"]] == [("status", "available")]


async def test_a_user_gone_longer_than_the_grace_period_leaves_and_nothing_is_kept(office: OfficeServer) -> None:
    ben = await office.client("ben.bergheim", "bergheim")
    await ben.watch(FLOOR)
    anna = await office.client("anna.altbach", "altbach")
    await anna.move(FLOOR, LOUNGE)
    await ben.until_view(FLOOR, lambda v: ANNA in v.members)
    await anna.disconnect()
    await ben.until_view(FLOOR, lambda v: ANNA not in v.members, timeout=3)
    assert await office.runtime.presence.store.member(ANNA) is None  # privacy: no last-seen


async def test_a_gap_in_sequence_numbers_is_detected_and_a_fresh_snapshot_heals_it(office: OfficeServer) -> None:
    ben = await office.client("ben.bergheim", "bergheim")
    view = await ben.watch(FLOOR)
    anna = await office.client("anna.altbach", "altbach")
    await anna.move(FLOOR)
    await ben.until_view(FLOOR, lambda v: ANNA in v.members)

    ben.pending_events("floor.diffs")
    ben.drop_next_frame = True  # one frame lost on the way
    await anna.move(FLOOR, LOUNGE)
    await ben.next_event("floor.diffs", lambda f: any(d.get("room_id") == LOUNGE for d in f["diffs"]))
    await anna.move(FLOOR, PROJECT_ROOM)  # the next frame reveals the gap
    await ben.until_view(FLOOR, lambda v: v.members.get(ANNA, {}).get("room_id") == PROJECT_ROOM)

    assert view.gaps == 1 and ben.resyncs == 1
    truth = await office.runtime.presence.floor_view(await anna_actor(office), FLOOR)
    assert view.seq == truth["seq"]
    assert view.members == {m["person"]: m for m in truth["members"]}


async def anna_actor(office: OfficeServer):
    member = await office.runtime.presence.store.member(ANNA)
    assert member is not None
    return member.actor


async def test_walking_respects_doors_capacity_and_owners(office: OfficeServer) -> None:
    tim = await office.client("tim.bergheim", "bergheim")  # owns projekt-buero-it-verbund
    lea = await office.client("lea.lindenau", "lindenau")  # owns the closed meeting room
    closed, locked_floor, locked = "projekt-besprechung", "altbach-eg", "altbach-buero-karl"

    with pytest.raises(RequestError) as refused:
        await tim.move(FLOOR, closed)
    assert refused.value.code == "knock_required"
    assert (await lea.move(FLOOR, closed)) == {"floor_id": FLOOR, "room_id": closed}  # owners always enter

    anna = await office.client("anna.altbach", "altbach")
    with pytest.raises(RequestError) as refused:
        await anna.move(locked_floor, locked)
    assert refused.value.code == "locked"
    karl = await office.client("karl.altbach", "altbach")
    assert (await karl.move(locked_floor, locked))["room_id"] == locked

    with pytest.raises(RequestError) as refused:
        await anna.move(FLOOR, "altbach-teekueche")
    assert refused.value.code == "not_on_floor"

    # Capacity 4; the owner tim walks in even when full.
    office_room = "projekt-buero-it-verbund"
    walkers = [await office.client(f"user{i}.seefeld", "seefeld") for i in range(4)]
    for walker in walkers:
        await walker.move(FLOOR, office_room)
    extra = await office.client("extra.seefeld", "seefeld")
    with pytest.raises(RequestError) as refused:
        await extra.move(FLOOR, office_room)
    assert refused.value.code == "room_full"
    assert refused.value.error["capacity"] == 4  # protocol.md §2: room_full carries capacity
    await tim.move(FLOOR, office_room)
    store = office.runtime.presence.store
    assert len(await store.occupants(FLOOR, office_room)) == 5

    # Moving leaves the previous room, freeing its place (the owner counts too).
    await walkers[0].move(FLOOR, LOUNGE)
    with pytest.raises(RequestError):
        await extra.move(FLOOR, office_room)  # 3 walkers + tim: still full
    await walkers[1].move(FLOOR, LOUNGE)
    await extra.move(FLOOR, office_room)
    assert len(await store.occupants(FLOOR, LOUNGE)) == 2 and len(await store.occupants(FLOOR, office_room)) == 4


async def test_status_of_several_sessions_merges_by_priority(office: OfficeServer) -> None:
    ben = await office.client("ben.bergheim", "bergheim")
    await ben.watch(FLOOR)
    phone = await office.client("anna.altbach", "altbach")
    await phone.move(FLOOR)
    desk = await office.client("anna.altbach", "altbach")
    await phone.set_status("away", scope="session")  # the idle phone
    await desk.set_status("do_not_disturb", "Telefonat", scope="session")
    await ben.until_view(FLOOR, lambda v: v.members.get(ANNA, {}).get("status") == "do_not_disturb")
    await desk.disconnect()  # the do-not-disturb session ends: the phone's away remains
    await ben.until_view(FLOOR, lambda v: v.members.get(ANNA, {}).get("status") == "away")
    result = await phone.set_status("available")
    assert result["presence"] == {"status": "available", "text": ""}


async def test_a_watcher_sees_rooms_change_live_when_an_admin_edits_the_campus(office: OfficeServer) -> None:
    ben = await office.client("ben.bergheim", "bergheim")
    view = await ben.watch(FLOOR)
    admin = office.token("lea.lindenau", "lindenau", roles=("staff", "admin"))
    async with office.server_session(admin) as http:
        async with http.patch(f"/api/v1/rooms/{LOUNGE}", json={"door": "closed", "name": "Ruheraum"}) as resp:
            assert resp.status == 200, await resp.text()
        body = {"name": "Sprint-Raum", "kind": "project", "rect": {"x": 700, "y": 360, "w": 250, "h": 200}}
        async with http.post(f"/api/v1/floors/{FLOOR}/rooms", json=body) as resp:
            assert resp.status == 201, await resp.text()
            new_room = (await resp.json())["room"]["id"]
    await ben.until_view(FLOOR, lambda v: new_room in v.rooms and v.rooms[LOUNGE]["door"] == "closed")
    assert view.rooms[LOUNGE]["name"] == "Ruheraum"
    assert view.rooms[new_room]["name"] == "Sprint-Raum"


async def test_the_same_user_id_in_two_towns_is_two_people_on_the_floor(office: OfficeServer) -> None:
    ben = await office.client("ben.bergheim", "bergheim")
    await ben.watch(FLOOR)
    altbach = await office.client("m.mueller", "altbach")
    lindenau = await office.client("m.mueller", "lindenau")
    assert (altbach.person, lindenau.person) == ("altbach/m.mueller", "lindenau/m.mueller")
    assert altbach.ready["me"]["user_id"] == lindenau.ready["me"]["user_id"] == "m.mueller"
    await altbach.move(FLOOR, LOUNGE)
    await lindenau.move(FLOOR, PROJECT_ROOM)
    view = await ben.until_view(FLOOR, lambda v: {"altbach/m.mueller", "lindenau/m.mueller"} <= set(v.members))
    assert view.members["altbach/m.mueller"]["room_id"] == LOUNGE
    assert view.members["lindenau/m.mueller"]["room_id"] == PROJECT_ROOM
    assert lindenau.ready["location"] == {"floor_id": None, "room_id": None}  # not the other town's presence

    await altbach.disconnect()
    await ben.until_view(FLOOR, lambda v: "altbach/m.mueller" not in v.members, timeout=3)
    assert view.members["lindenau/m.mueller"]["room_id"] == PROJECT_ROOM
    left = [d for f in ben.pending_events("floor.diffs") for d in f["diffs"] if d["type"] == "left"]
    assert [d["person"] for d in left] == ["altbach/m.mueller"] and all("user_id" not in d for d in left)


async def test_leaving_when_on_no_floor_succeeds_and_changes_nothing(office: OfficeServer) -> None:
    """protocol.md §3 presence.leave: no specific errors."""
    anna = await office.client("anna.altbach", "altbach")
    ack = await anna.call("presence.leave")
    assert ack == {"ok": True, "location": {"floor_id": None, "room_id": None}}
