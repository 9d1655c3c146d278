"""Doorknocks over the real protocol: real clients, one outcome per knock."""

from __future__ import annotations

import asyncio
import re

import pytest

from presence_server.messages import KnockRef
from rooms.person import PersonId
from signalling.client import OfficeClient, RequestError
from tests.conftest import OfficeServer, StartServer

FLOOR = "projekt"
MEETING = "projekt-besprechung"  # closed door, owner lindenau/lea.lindenau
COORDINATION = "projekt-buero-koordination"  # closed, owners lindenau/lea.lindenau and lindenau/jonas.lindenau
BEN, LEA = PersonId("bergheim/ben.bergheim"), PersonId("lindenau/lea.lindenau")


async def occupied_meeting_room(office: OfficeServer) -> tuple[OfficeClient, OfficeClient]:
    """lea (owner) inside the closed meeting room, and ben on the floor outside."""
    lea = await office.client("lea.lindenau", "lindenau")
    await lea.move(FLOOR, MEETING)
    ben = await office.client("ben.bergheim", "bergheim")
    await ben.move(FLOOR)
    return lea, ben


async def test_an_admitted_knocker_is_moved_into_the_room_and_everyone_sees_one_outcome(office: OfficeServer) -> None:
    lea, ben = await occupied_meeting_room(office)
    watcher = await office.client("sven.seefeld", "seefeld")
    await watcher.watch(FLOOR)
    knock = await ben.knock(MEETING, "Kurze Frage zum Haushalt")
    incoming = await lea.next_event("knock.incoming")
    assert incoming["knock_id"] == knock["knock_id"]
    assert incoming["knocker"]["person"] == BEN
    assert incoming["knocker"]["user_id"] == "ben.bergheim" and incoming["knocker"]["municipality"] == "bergheim"
    assert incoming["message"] == "Kurze Frage zum Haushalt" and incoming["silent"] is False

    result = await lea.answer(knock["knock_id"], admit=True)
    assert result["outcome"]["outcome"] == "admitted" and result["outcome"]["by"] == LEA
    assert result["outcome"]["knocker_id"] == BEN
    for client in (ben, lea):
        outcome = await client.next_event("knock.outcome")
        assert (outcome["knock_id"], outcome["outcome"], outcome["knocker_id"], outcome["by"]) == (
            knock["knock_id"], "admitted", BEN, LEA
        )
    await watcher.until_view(FLOOR, lambda v: v.members.get(BEN, {}).get("room_id") == MEETING)


async def test_a_knock_id_is_k_dash_twelve_url_safe_characters_at_its_floor(office: OfficeServer) -> None:
    """docs/protocol.md §3: the floor part routes the knock in a cluster (knocks.store.floor_of)."""
    lea, ben = await occupied_meeting_room(office)
    knock = await ben.knock(MEETING)
    assert re.fullmatch(r"k-[A-Za-z0-9_-]{12}@" + FLOOR, knock["knock_id"]), knock["knock_id"]
    assert (await lea.next_event("knock.incoming"))["knock_id"] == knock["knock_id"]
    assert (await ben.next_event("knock.pending"))["knock_id"] == knock["knock_id"]
    # The longest floor id (64 characters, rooms/validation.py) still gives an id events accept.
    KnockRef.model_validate({"knock_id": "k-" + "x" * 12 + "@" + "f" * 64})


async def test_admitting_into_a_full_room_is_refused_with_its_capacity_and_the_knock_stays_pending(
    office: OfficeServer,
) -> None:
    lea, ben = await occupied_meeting_room(office)
    admin = office.token("ada.lindenau", "lindenau", roles=("staff", "admin"))
    async with office.server_session(admin) as http:
        async with http.patch(f"/api/v1/rooms/{MEETING}", json={"capacity": 2}) as resp:
            assert resp.status == 200, await resp.text()
    knock = await ben.knock(MEETING)
    tim = await office.client("tim.bergheim", "bergheim")
    await tim.move(FLOOR)
    tims = await tim.knock(MEETING)
    await lea.answer(tims["knock_id"], admit=True)  # lea and tim inside: full

    with pytest.raises(RequestError) as refused:
        await lea.answer(knock["knock_id"], admit=True)
    assert refused.value.code == "room_full"
    assert refused.value.error["capacity"] == 2  # protocol.md §2 and §10
    await tim.move(FLOOR)  # a place frees up: the same knock can still be admitted
    result = await lea.answer(knock["knock_id"], admit=True)
    assert result["outcome"]["outcome"] == "admitted"


async def test_a_declined_knocker_waits_out_a_cooldown(office: OfficeServer) -> None:
    lea, ben = await occupied_meeting_room(office)
    knock = await ben.knock(MEETING)
    await lea.next_event("knock.incoming")
    await lea.answer(knock["knock_id"], admit=False)
    outcome = await ben.next_event("knock.outcome")
    assert outcome["outcome"] == "declined"
    with pytest.raises(RequestError) as refused:
        await ben.knock(MEETING)
    assert refused.value.code == "knock_cooldown"
    assert refused.value.error["retry_after"] > 0


async def test_one_pending_knock_per_knocker_and_the_knocker_can_cancel(office: OfficeServer) -> None:
    lea, ben = await occupied_meeting_room(office)
    knock = await ben.knock(MEETING)
    with pytest.raises(RequestError) as refused:
        await ben.knock(MEETING)
    assert refused.value.code == "already_knocking"
    with pytest.raises(RequestError) as refused:  # only the knocker may cancel
        await lea.request("knock.cancel", {"knock_id": knock["knock_id"]})
    assert refused.value.code == "forbidden"
    await ben.request("knock.cancel", {"knock_id": knock["knock_id"]})
    outcome = await lea.next_event("knock.outcome")
    assert (outcome["outcome"], outcome["by"], outcome["knocker_id"]) == ("cancelled", BEN, BEN)
    with pytest.raises(RequestError) as refused:
        await lea.answer(knock["knock_id"], admit=True)
    assert refused.value.code == "knock_resolved"
    await ben.knock(MEETING)  # a cancel sets no cooldown


async def test_an_unanswered_knock_expires(start_server: StartServer) -> None:
    office = await start_server({"PRESENCE_KNOCK__TIMEOUT_SECONDS": "1"})
    lea, ben = await occupied_meeting_room(office)
    knock = await ben.knock(MEETING)
    outcome = await ben.next_event("knock.outcome", timeout=5)
    assert (outcome["knock_id"], outcome["outcome"], outcome["reason"]) == (knock["knock_id"], "expired", "timeout")
    assert (await lea.next_event("knock.outcome"))["outcome"] == "expired"


async def test_pending_knocks_are_declined_when_the_room_empties(office: OfficeServer) -> None:
    lea, ben = await occupied_meeting_room(office)
    await ben.knock(MEETING)
    await lea.move(FLOOR)  # the last one inside leaves
    outcome = await ben.next_event("knock.outcome")
    assert (outcome["outcome"], outcome["reason"]) == ("declined", "room_empty")
    await ben.knock(COORDINATION)  # no cooldown: nobody declined on purpose


async def test_a_knock_on_an_empty_room_reaches_its_owners_wherever_they_are(office: OfficeServer) -> None:
    jonas = await office.client("jonas.lindenau", "lindenau")
    await jonas.move("lindenau-eg")  # another floor
    ben = await office.client("ben.bergheim", "bergheim")
    knock = await ben.knock(COORDINATION)
    assert knock["to_owners"] is True
    incoming = await jonas.next_event("knock.incoming")
    assert incoming["room_id"] == COORDINATION
    await jonas.answer(knock["knock_id"], admit=True)
    assert (await ben.next_event("knock.outcome"))["outcome"] == "admitted"
    assert await office.runtime.presence.location(BEN) == {"floor_id": FLOOR, "room_id": COORDINATION}


async def test_nobody_to_answer_is_said_at_once(office: OfficeServer) -> None:
    ben = await office.client("ben.bergheim", "bergheim")
    with pytest.raises(RequestError) as refused:
        await ben.knock(COORDINATION)  # empty, and no owner online
    assert refused.value.code == "nobody_to_answer"


async def test_do_not_disturb_hears_the_knock_silently(office: OfficeServer) -> None:
    lea, ben = await occupied_meeting_room(office)
    await lea.set_status("do_not_disturb")
    await ben.knock(MEETING)
    assert (await lea.next_event("knock.incoming"))["silent"] is True


async def test_knocking_refuses_open_and_locked_doors_and_people_already_inside(office: OfficeServer) -> None:
    lea, ben = await occupied_meeting_room(office)
    with pytest.raises(RequestError) as refused:
        await ben.knock("projekt-lounge")
    assert refused.value.code == "door_open"
    anna = await office.client("anna.altbach", "altbach")
    with pytest.raises(RequestError) as refused:
        await anna.knock("altbach-buero-karl")
    assert refused.value.code == "locked"
    with pytest.raises(RequestError) as refused:
        await lea.knock(MEETING)
    assert refused.value.code == "already_inside"


async def test_only_people_inside_or_owners_may_answer(office: OfficeServer) -> None:
    lea, ben = await occupied_meeting_room(office)
    knock = await ben.knock(MEETING)
    outsider = await office.client("sven.seefeld", "seefeld")
    with pytest.raises(RequestError) as refused:
        await outsider.answer(knock["knock_id"], admit=True)
    assert refused.value.code == "forbidden"
    assert await office.runtime.knocks.store.pending_of(BEN) is not None


async def test_two_occupants_answering_at_the_same_moment_give_exactly_one_outcome_100_times(
    start_server: StartServer,
) -> None:
    office = await start_server(
        {
            "PRESENCE_KNOCK__COOLDOWN_SECONDS": "0",  # decline after decline
            "PRESENCE_LIMITS__EVENTS_PER_SECOND": "10000",  # 100 rounds as fast as they go
            "PRESENCE_LIMITS__BURST": "10000",
        }
    )
    lea, ben = await occupied_meeting_room(office)
    jonas = await office.client("jonas.lindenau", "lindenau")
    entry = await jonas.knock(MEETING)
    await lea.answer(entry["knock_id"], admit=True)
    await lea.next_event("knock.outcome")
    rounds = 100
    for round_no in range(rounds):
        knock = await ben.knock(MEETING)
        admit_first = round_no % 2 == 0
        acks = await asyncio.gather(
            lea.call("knock.answer", {"knock_id": knock["knock_id"], "admit": admit_first}),
            jonas.call("knock.answer", {"knock_id": knock["knock_id"], "admit": not admit_first}),
        )
        winners = [a for a in acks if a["ok"]]
        losers = [a for a in acks if not a["ok"]]
        assert len(winners) == 1 and len(losers) == 1, acks
        assert losers[0]["error"]["code"] == "knock_resolved"
        outcome = winners[0]["outcome"]["outcome"]
        for client in (ben, lea, jonas):
            seen = await client.next_event("knock.outcome", lambda o: o["knock_id"] == knock["knock_id"])
            assert seen["outcome"] == outcome
        if outcome == "admitted":
            await ben.move(FLOOR)  # step out for the next round
    # Exactly one outcome per knock: nothing extra is left in anyone's queue.
    for client in (ben, lea, jonas):
        assert client.pending_events("knock.outcome") == []


async def test_the_same_user_id_from_another_town_is_not_an_owner(office: OfficeServer) -> None:
    # Altbach's provider may issue "lea.lindenau" too: that is Altbach's Lea, not the owner.
    impostor = await office.client("lea.lindenau", "altbach")
    assert impostor.person == "altbach/lea.lindenau"
    with pytest.raises(RequestError) as refused:
        await impostor.move(FLOOR, MEETING)
    assert refused.value.code == "knock_required"
    jonas_elsewhere = await office.client("jonas.lindenau", "altbach")
    await jonas_elsewhere.move(FLOOR)
    ben = await office.client("ben.bergheim", "bergheim")
    with pytest.raises(RequestError) as refused:
        await ben.knock(COORDINATION)  # empty; its owners (lindenau's lea and jonas) are offline
    assert refused.value.code == "nobody_to_answer"
    assert jonas_elsewhere.pending_events("knock.incoming") == []
