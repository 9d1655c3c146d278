"""Room calls over the real protocol: membership, the relay rule, limits, TURN."""

from __future__ import annotations

import base64
import hashlib
import hmac
import time

from rooms.person import PersonId
from signalling.client import OfficeClient
from tests.conftest import OfficeServer, StartServer

FLOOR = "projekt"
LOUNGE = "projekt-lounge"  # open door
ANNA, BEN, EVE = "altbach/anna.altbach", "bergheim/ben.bergheim", "seefeld/eve.seefeld"


async def in_lounge(office: OfficeServer, user: str, municipality: str) -> OfficeClient:
    client = await office.client(user, municipality)
    await client.move(FLOOR, LOUNGE)
    return client


async def test_members_join_a_room_call_and_are_told_of_each_other(office: OfficeServer) -> None:
    anna = await in_lounge(office, "anna.altbach", "altbach")
    ben = await in_lounge(office, "ben.bergheim", "bergheim")
    first = await anna.request("call.join", {"room_id": LOUNGE})
    assert first["call"]["members"] == [ANNA] and first["ice_servers"] == []
    second = await ben.request("call.join", {"room_id": LOUNGE})
    assert second["call"]["call_id"] == first["call"]["call_id"]
    assert second["call"]["members"] == [ANNA, BEN]
    update = await anna.next_event("call.updated", lambda c: len(c["members"]) == 2)
    assert update["members"] == [ANNA, BEN]


async def test_a_call_is_joined_from_inside_the_room_only(office: OfficeServer) -> None:
    outside = await office.client("sven.seefeld", "seefeld")
    await outside.move(FLOOR)
    ack = await outside.call("call.join", {"room_id": LOUNGE})
    assert ack["error"]["code"] == "forbidden"
    stranger = await office.client("karl.altbach", "altbach")
    ack = await stranger.call("call.join", {"room_id": "bergheim-buergerbuero"})  # another town's room
    assert ack["error"]["code"] == "not_found"


async def test_signals_go_only_between_members_of_the_same_call(office: OfficeServer) -> None:
    anna = await in_lounge(office, "anna.altbach", "altbach")
    ben = await in_lounge(office, "ben.bergheim", "bergheim")
    call_id = (await anna.request("call.join", {"room_id": LOUNGE}))["call"]["call_id"]
    await ben.request("call.join", {"room_id": LOUNGE})
    offer = {"call_id": call_id, "to": BEN, "kind": "offer", "data": {"type": "offer", "sdp": "v=0"}}
    await anna.request("call.signal", offer)
    got = await ben.next_event("call.signal")
    assert got == {"call_id": call_id, "from": ANNA, "kind": "offer", "data": {"type": "offer", "sdp": "v=0"}}

    eve = await in_lounge(office, "eve.seefeld", "seefeld")  # inside the room, not in the call
    for payload in (
        {**offer, "to": BEN},  # an outsider addressing a member
        {**offer, "call_id": "room:other:1"},  # a call she is not in
    ):
        ack = await eve.call("call.signal", payload)
        assert ack["error"]["code"] == "not_in_call", ack
    ack = await anna.call("call.signal", {**offer, "to": EVE})  # a member addressing an outsider
    assert ack["error"]["code"] == "not_in_call"
    ack = await anna.call("call.signal", {**offer, "to": ANNA})  # oneself
    assert ack["error"]["code"] == "forbidden"
    big = {**offer, "data": {"type": "offer", "sdp": "x" * 70_000}}
    assert (await anna.call("call.signal", big))["error"]["code"] == "payload_too_large"
    # Nothing of the refused ones arrived: the next signal ben sees is this marker.
    await anna.request("call.signal", {**offer, "kind": "candidate", "data": {"n": 2}})
    assert (await ben.next_event("call.signal"))["data"] == {"n": 2}
    assert eve.pending_events("call.signal") == []


async def test_a_signal_over_calls_max_signal_bytes_is_refused_with_the_limit(start_server: StartServer) -> None:
    office = await start_server(
        {"PRESENCE_LIMITS__MAX_EVENT_BYTES": "65536", "PRESENCE_CALLS__MAX_SIGNAL_BYTES": "2048"}
    )  # the event limit above the signal limit, so the call's own check is the one that refuses
    anna = await in_lounge(office, "anna.altbach", "altbach")
    ben = await in_lounge(office, "ben.bergheim", "bergheim")
    call_id = (await anna.request("call.join", {"room_id": LOUNGE}))["call"]["call_id"]
    await ben.request("call.join", {"room_id": LOUNGE})
    big = {"call_id": call_id, "to": ben.person, "kind": "offer", "data": {"sdp": "x" * 4000}}
    error = (await anna.call("call.signal", big))["error"]
    assert (error["code"], error["limit"]) == ("payload_too_large", 2048)  # protocol.md §2: with limit
    assert ben.pending_events("call.signal") == []


async def test_walking_out_of_the_room_leaves_the_call(office: OfficeServer) -> None:
    anna = await in_lounge(office, "anna.altbach", "altbach")
    ben = await in_lounge(office, "ben.bergheim", "bergheim")
    await anna.request("call.join", {"room_id": LOUNGE})
    await ben.request("call.join", {"room_id": LOUNGE})
    await ben.move(FLOOR)  # the hallway
    update = await anna.next_event("call.updated", lambda c: c["members"] == [ANNA])
    assert update["ended"] is False
    await anna.request("call.leave")
    assert await office.runtime.calls.store.call_of(PersonId(ANNA)) is None


async def test_a_mesh_is_full_at_its_configured_size(start_server: StartServer) -> None:
    office = await start_server({"PRESENCE_CALLS__MAX_MESH": "2"})
    clients = [await in_lounge(office, f"u{i}.seefeld", "seefeld") for i in range(3)]
    for client in clients[:2]:
        await client.request("call.join", {"room_id": LOUNGE})
    ack = await clients[2].call("call.join", {"room_id": LOUNGE})
    assert ack["error"]["code"] == "call_full" and ack["error"]["max_mesh"] == 2


async def test_turn_credentials_verify_with_an_independent_hmac(start_server: StartServer) -> None:
    secret = "coturn-static-auth-secret-for-tests"
    office = await start_server({
        "PRESENCE_ICE__TURN_SECRET": secret,
        "PRESENCE_ICE__TURN_URLS": '["turn:turn.example:3478?transport=udp"]',
        "PRESENCE_ICE__STUN_URLS": '["stun:stun.example:3478"]',
        "PRESENCE_ICE__TURN_TTL_SECONDS": "600",
    })
    anna = await in_lounge(office, "anna.altbach", "altbach")
    servers = (await anna.request("call.join", {"room_id": LOUNGE}))["ice_servers"]
    assert {"urls": ["stun:stun.example:3478"]} in servers
    turn = next(s for s in servers if "credential" in s)
    expiry, _, user = turn["username"].partition(":")
    assert user == ANNA and 590 <= int(expiry) - time.time() <= 600
    expected = base64.b64encode(hmac.new(secret.encode(), turn["username"].encode(), hashlib.sha1).digest()).decode()
    assert turn["credential"] == expected


# ------------------------------------------------------------------ direct calls
async def on_floor(office: OfficeServer, user: str, municipality: str, floor: str = FLOOR) -> OfficeClient:
    client = await office.client(user, municipality)
    await client.move(floor)
    return client


async def test_a_ring_reaches_every_device_and_the_first_answer_wins_on_all(office: OfficeServer) -> None:
    anna = await on_floor(office, "anna.altbach", "altbach")
    ben_phone = await on_floor(office, "ben.bergheim", "bergheim")
    ben_desk = await office.client("ben.bergheim", "bergheim")
    ring = (await anna.request("call.ring", {"person": BEN}))["ring"]
    for device in (ben_phone, ben_desk):
        assert (await device.next_event("call.ring"))["ring"]["ring_id"] == ring["ring_id"]
    accepted = await ben_desk.request("call.answer", {"ring_id": ring["ring_id"], "accept": True})
    assert accepted["call"]["members"] == [ANNA, BEN] and accepted["call"]["kind"] == "direct"
    late = await ben_phone.call("call.answer", {"ring_id": ring["ring_id"], "accept": False})
    assert late["error"]["code"] == "ring_resolved"
    for client in (anna, ben_phone, ben_desk):  # every device stops ringing
        outcome = await client.next_event("call.ring_outcome")
        assert (outcome["outcome"], outcome["by"]) == ("accepted", BEN)
        assert (outcome["caller_id"], outcome["callee_id"]) == (ANNA, BEN)
    update = await anna.next_event("call.updated")
    assert update["call_id"] == accepted["call"]["call_id"]


async def test_decline_and_cancel_end_the_ring_for_both(office: OfficeServer) -> None:
    anna = await on_floor(office, "anna.altbach", "altbach")
    ben = await on_floor(office, "ben.bergheim", "bergheim")
    ring = (await anna.request("call.ring", {"person": BEN}))["ring"]
    await ben.request("call.answer", {"ring_id": ring["ring_id"], "accept": False})
    assert (await anna.next_event("call.ring_outcome"))["outcome"] == "declined"
    ring = (await anna.request("call.ring", {"person": BEN}))["ring"]
    await anna.request("call.cancel", {"ring_id": ring["ring_id"]})
    assert (await ben.next_event("call.ring_outcome", lambda o: o["ring_id"] == ring["ring_id"]))["outcome"] == "cancelled"


async def test_an_unanswered_ring_times_out(start_server: StartServer) -> None:
    office = await start_server({"PRESENCE_CALLS__RING_TIMEOUT_SECONDS": "1"})
    anna = await on_floor(office, "anna.altbach", "altbach")
    ben = await on_floor(office, "ben.bergheim", "bergheim")
    ring = (await anna.request("call.ring", {"person": BEN}))["ring"]
    for client in (anna, ben):
        outcome = await client.next_event("call.ring_outcome", timeout=5)
        assert (outcome["ring_id"], outcome["outcome"]) == (ring["ring_id"], "expired")


async def test_do_not_disturb_is_not_rung_and_a_note_waits_for_available(office: OfficeServer) -> None:
    anna = await on_floor(office, "anna.altbach", "altbach")
    ben = await on_floor(office, "ben.bergheim", "bergheim")
    await ben.set_status("do_not_disturb", "Klausur")
    ack = await anna.call("call.ring", {"person": BEN})
    assert ack["error"]["code"] == "do_not_disturb"
    await anna.request("call.note", {"person": BEN, "text": "Bitte zurückrufen: Förderantrag"})
    assert ben.pending_events("call.ring") == []
    await ben.set_status("available")
    notes = (await ben.next_event("call.notes"))["notes"]
    assert [(n["from"]["person"], n["from"]["user_id"], n["text"]) for n in notes] == [
        (ANNA, "anna.altbach", "Bitte zurückrufen: Förderantrag")
    ]


async def test_notes_for_a_callee_who_goes_offline_are_deleted_with_their_presence(office: OfficeServer) -> None:
    anna = await on_floor(office, "anna.altbach", "altbach")
    await anna.watch(FLOOR)
    ben = await on_floor(office, "ben.bergheim", "bergheim")
    await ben.set_status("do_not_disturb")
    await anna.request("call.note", {"person": BEN, "text": "Bitte zurückrufen"})
    await anna.until_view(FLOOR, lambda v: BEN in v.members)
    await ben.disconnect()
    await anna.until_view(FLOOR, lambda v: BEN not in v.members)  # the grace period is over
    assert await office.runtime.calls.store.take_notes(PersonId(BEN)) == []


async def test_a_note_over_its_cap_is_an_invalid_payload_naming_the_text(office: OfficeServer) -> None:
    anna = await on_floor(office, "anna.altbach", "altbach")
    ben = await on_floor(office, "ben.bergheim", "bergheim")
    await ben.set_status("do_not_disturb")
    error = (await anna.call("call.note", {"person": ben.person, "text": "x" * 281}))["error"]
    assert (error["code"], error["field"]) == ("invalid_payload", "text")  # like status text, knock message
    await anna.request("call.note", {"person": ben.person, "text": "x" * 280})


async def test_ringing_across_towns_needs_a_floor_the_caller_may_see(office: OfficeServer) -> None:
    sven = await on_floor(office, "sven.seefeld", "seefeld")
    jan = await on_floor(office, "jan.altbach", "altbach", floor="altbach-eg")  # altbach's own floor
    ack = await sven.call("call.ring", {"person": "altbach/jan.altbach"})
    assert ack["error"]["code"] == "not_found"  # seefeld may not look into altbach's town hall
    await jan.move(FLOOR)  # now on the cooperation's shared floor
    ring = (await sven.request("call.ring", {"person": "altbach/jan.altbach"}))["ring"]
    assert (await jan.next_event("call.ring"))["ring"]["ring_id"] == ring["ring_id"]


async def test_the_floor_shows_who_is_in_a_call(office: OfficeServer) -> None:
    watcher = await office.client("sven.seefeld", "seefeld")
    await watcher.watch(FLOOR)
    anna = await in_lounge(office, "anna.altbach", "altbach")
    ben = await in_lounge(office, "ben.bergheim", "bergheim")
    call_id = (await anna.request("call.join", {"room_id": LOUNGE}))["call"]["call_id"]
    await ben.request("call.join", {"room_id": LOUNGE})
    in_call = lambda v, user, value: v.members.get(user, {}).get("in_call") == value  # noqa: E731  (absent: None)
    await watcher.until_view(FLOOR, lambda v: in_call(v, ANNA, call_id) and in_call(v, BEN, call_id))
    late = await office.client("lea.lindenau", "lindenau")  # a snapshot taken now says so too
    snapshot = await late.watch(FLOOR)
    assert snapshot.members[ANNA]["in_call"] == call_id
    await ben.move(FLOOR)  # walks out: leaves the call
    await watcher.until_view(FLOOR, lambda v: in_call(v, BEN, None) and in_call(v, ANNA, call_id))
    await anna.request("call.leave")
    await watcher.until_view(FLOOR, lambda v: in_call(v, ANNA, None))


async def test_someone_in_a_direct_call_shows_it_on_the_floor_they_walk_to(office: OfficeServer) -> None:
    anna = await on_floor(office, "anna.altbach", "altbach")
    ben = await on_floor(office, "ben.bergheim", "bergheim")
    ring = (await anna.request("call.ring", {"person": BEN}))["ring"]
    call_id = (await ben.request("call.answer", {"ring_id": ring["ring_id"], "accept": True}))["call"]["call_id"]
    watcher = await office.client("jan.altbach", "altbach")
    await watcher.watch("altbach-eg")
    await anna.move("altbach-eg")  # anna walks to her own town's floor, still talking to ben
    await watcher.until_view(
        "altbach-eg", lambda v: v.members.get(ANNA, {}).get("in_call") == call_id
    )


async def test_the_callee_hears_the_ring_as_documented_and_ids_are_persons(office: OfficeServer) -> None:
    anna = await on_floor(office, "anna.altbach", "altbach")
    ben = await on_floor(office, "ben.bergheim", "bergheim")
    ack = await anna.request("call.ring", {"person": BEN})
    heard = await ben.next_event("call.ring")
    assert heard == {"ring": ack["ring"]}  # {ring}, not the bare ring
    assert heard["ring"]["callee_id"] == BEN
    assert heard["ring"]["caller"]["person"] == ANNA and heard["ring"]["caller"]["user_id"] == "anna.altbach"


async def test_a_ring_names_a_person_never_a_bare_user_id(office: OfficeServer) -> None:
    anna = await on_floor(office, "anna.altbach", "altbach")
    await on_floor(office, "ben.bergheim", "bergheim")
    for payload in ({"person": "ben.bergheim"}, {"user_id": "ben.bergheim"}):
        ack = await anna.call("call.ring", payload)
        assert ack["error"]["code"] == "invalid_payload", (payload, ack)
    ack = await anna.call("call.note", {"person": "ben.bergheim", "text": "hallo"})
    assert ack["error"]["code"] == "invalid_payload"


async def test_a_ring_reaches_only_the_person_of_the_named_town(office: OfficeServer) -> None:
    anna = await on_floor(office, "anna.altbach", "altbach")
    lindenau = await on_floor(office, "m.mueller", "lindenau")
    seefeld = await on_floor(office, "m.mueller", "seefeld")  # same user id, another town
    ring = (await anna.request("call.ring", {"person": "lindenau/m.mueller"}))["ring"]
    assert (await lindenau.next_event("call.ring"))["ring"]["ring_id"] == ring["ring_id"]
    ack = await seefeld.call("call.answer", {"ring_id": ring["ring_id"], "accept": True})
    assert ack["error"]["code"] == "forbidden"  # not the callee, though the user id matches
    assert seefeld.pending_events("call.ring") == []
    ack = await anna.call("call.ring", {"person": "bergheim/m.mueller"})  # nobody of that name in bergheim
    assert ack["error"]["code"] == "not_found"


async def test_a_conflicting_ring_says_why(office: OfficeServer) -> None:
    anna = await on_floor(office, "anna.altbach", "altbach")
    ben = await on_floor(office, "ben.bergheim", "bergheim")
    ring = (await anna.request("call.ring", {"person": BEN}))["ring"]
    again = await anna.call("call.ring", {"person": BEN})
    assert (again["error"]["code"], again["error"]["reason"]) == ("conflict", "already_ringing")
    await ben.request("call.answer", {"ring_id": ring["ring_id"], "accept": True})
    again = await anna.call("call.ring", {"person": BEN})
    assert (again["error"]["code"], again["error"]["reason"]) == ("conflict", "already_in_call")
