"""The presence store contract, run against every implementation.

A new backend passes this suite before anything else uses it. Stores are
created through ``new_store`` (parametrised); add a backend there.
"""

from __future__ import annotations

import asyncio
from typing import AsyncIterator

import pytest

from presence_server.cluster.presence_redis import RedisPresenceStore
from presence_server.presence.state import FloorDiff, Status
from presence_server.presence.store import PresenceStore
from presence_server.presence.store_memory import MemoryPresenceStore
from rooms.actors import Actor, Profile
from rooms.errors import DomainError, ErrorCode

ANNA = Actor("anna", "altbach", "Anna")
BEN = Actor("ben", "bergheim", "Ben")


@pytest.fixture(params=["memory", "redis"])
async def new_store(request: pytest.FixtureRequest) -> AsyncIterator[PresenceStore]:
    store: PresenceStore
    if request.param == "redis":
        # Looked up only here, so the memory runs need no redis-server.
        url = request.getfixturevalue("redis_server").url
        store = RedisPresenceStore(url, prefix=request.getfixturevalue("redis_prefix"), node_id="node-a")
    else:
        store = MemoryPresenceStore()
    await store.open()
    yield store
    await store.close()


def kinds(diffs: list[FloorDiff]) -> list[tuple[str, str, int]]:
    return [(d.floor_id, d.type, d.seq) for d in diffs]


async def test_moves_on_one_floor_carry_consecutive_sequence_numbers(new_store: PresenceStore) -> None:
    s = new_store
    await s.connect("a1", ANNA, 0)
    await s.connect("b1", BEN, 0)
    assert kinds((await s.move("anna", "f", None, capacity=None))[0]) == [("f", "joined", 1)]
    assert kinds((await s.move("ben", "f", "r", capacity=None))[0]) == [("f", "joined", 2)]
    diffs, before = await s.move("anna", "f", "r", capacity=None)
    assert kinds(diffs) == [("f", "moved", 3)] and diffs[0].data == {"user_id": "anna", "from": None, "room_id": "r"}
    assert (before.floor_id, before.room_id) == ("f", None)
    assert (await s.move("anna", "f", "r", capacity=None))[0] == []
    assert {m.user_id for m in await s.occupants("f", "r")} == {"anna", "ben"}


async def test_changing_floors_leaves_one_and_joins_the_other(new_store: PresenceStore) -> None:
    s = new_store
    await s.connect("a1", ANNA, 0)
    await s.move("anna", "f1", "r1", capacity=None)
    diffs, _ = await s.move("anna", "f2", None, capacity=None)
    assert kinds(diffs) == [("f1", "left", 2), ("f2", "joined", 1)]
    assert await s.occupants("f1", "r1") == []
    member = await s.member("anna")
    assert member is not None and (member.floor_id, member.room_id) == ("f2", None)


async def test_the_joined_diff_carries_the_member_as_watchers_see_it(new_store: PresenceStore) -> None:
    s = new_store
    actor = Actor("lea", "lindenau", "Lea", profile=Profile("Bauamt", "Ingenieurin", ("Naturschutz",)))
    await s.connect("l1", actor, 0)
    await s.set_status("l1", Status.BUSY, "Termin", all_sessions=True)
    diffs, _ = await s.move("lea", "f", "r", capacity=None)
    assert diffs[0].data["member"] == {
        "user_id": "lea", "name": "Lea", "municipality": "lindenau", "guest": False,
        "profile": {"department": "Bauamt", "job_title": "Ingenieurin", "skills": ["Naturschutz"]},
        "status": "busy", "text": "Termin", "room_id": "r",
    }
    seq, members = await s.snapshot("f")
    assert seq == 1 and members == [diffs[0].data["member"]]


async def test_a_second_session_inherits_status_and_emits_nothing(new_store: PresenceStore) -> None:
    s = new_store
    await s.connect("a1", ANNA, 0)
    await s.move("anna", "f", None, capacity=None)
    await s.set_status("a1", Status.BUSY, "Sitzung", all_sessions=True)
    diffs, member = await s.connect("a2", ANNA, 0)
    assert diffs == [] and (member.status, member.text, member.sessions) == (Status.BUSY, "Sitzung", 2)


@pytest.mark.parametrize(
    ("first", "second", "winner"),
    [
        (Status.AWAY, Status.AVAILABLE, Status.AVAILABLE),
        (Status.AVAILABLE, Status.BUSY, Status.BUSY),
        (Status.DO_NOT_DISTURB, Status.BUSY, Status.DO_NOT_DISTURB),
        (Status.AWAY, Status.DO_NOT_DISTURB, Status.DO_NOT_DISTURB),
    ],
)
async def test_status_merges_by_priority(new_store: PresenceStore, first: Status, second: Status, winner: Status) -> None:
    s = new_store
    await s.connect("a1", ANNA, 0)
    await s.connect("a2", ANNA, 0)
    await s.move("anna", "f", None, capacity=None)
    await s.set_status("a1", first, "", all_sessions=False)
    diffs, member = await s.set_status("a2", second, "", all_sessions=False)
    assert member.status is winner
    _, members = await s.snapshot("f")
    assert members[0]["status"] == winner.value


async def test_the_most_recent_text_wins_among_equal_statuses_and_diffs_only_on_change(new_store: PresenceStore) -> None:
    s = new_store
    await s.connect("a1", ANNA, 0)
    await s.connect("a2", ANNA, 0)
    await s.move("anna", "f", None, capacity=None)
    await s.set_status("a1", Status.BUSY, "alt", all_sessions=False)
    diffs, member = await s.set_status("a2", Status.BUSY, "neu", all_sessions=False)
    assert member.text == "neu"
    assert [(d.type, d.data) for d in diffs] == [("status", {"user_id": "anna", "status": "busy", "text": "neu"})]
    assert (await s.set_status("a2", Status.BUSY, "neu", all_sessions=False))[0] == []


async def test_the_last_session_lingers_and_expiry_forgets_the_user(new_store: PresenceStore) -> None:
    s = new_store
    await s.connect("a1", ANNA, 0)
    await s.move("anna", "f", "r", capacity=None)
    diffs, since = await s.disconnect("a1", 10.0)
    assert diffs == [] and since == 10.0
    lingering = await s.member("anna")
    assert lingering is not None and lingering.sessions == 0 and lingering.room_id == "r"
    diffs, gone = await s.expire("anna", 10.0)
    assert kinds(diffs) == [("f", "left", 2)]
    assert gone is not None and (gone.floor_id, gone.room_id) == ("f", "r")
    assert await s.member("anna") is None and await s.occupants("f", "r") == []


async def test_a_stale_expiry_after_a_reconnect_does_nothing(new_store: PresenceStore) -> None:
    s = new_store
    await s.connect("a1", ANNA, 0)
    await s.move("anna", "f", None, capacity=None)
    await s.disconnect("a1", 10.0)
    await s.connect("a2", ANNA, 11.0)
    assert await s.expire("anna", 10.0) == ([], None)
    await s.disconnect("a2", 20.0)
    assert await s.expire("anna", 10.0) == ([], None)
    assert kinds((await s.expire("anna", 20.0))[0]) == [("f", "left", 2)]


async def test_disconnecting_an_unknown_session_changes_nothing(new_store: PresenceStore) -> None:
    assert await new_store.disconnect("nobody", 1.0) == ([], None)


async def test_a_changed_name_is_shown_as_a_join(new_store: PresenceStore) -> None:
    s = new_store
    await s.connect("a1", ANNA, 0)
    await s.move("anna", "f", None, capacity=None)
    diffs = await s.update_actor(Actor("anna", "altbach", "Dr. Anna"))
    assert kinds(diffs) == [("f", "joined", 2)] and diffs[0].data["member"]["name"] == "Dr. Anna"
    assert await s.update_actor(Actor("anna", "altbach", "Dr. Anna")) == []


async def test_capacity_is_checked_with_the_move(new_store: PresenceStore) -> None:
    s = new_store
    for i in range(3):
        await s.connect(f"s{i}", Actor(f"u{i}", "seefeld", f"U{i}"), 0)
    await s.move("u0", "f", "r", capacity=2)
    await s.move("u1", "f", "r", capacity=2)
    with pytest.raises(DomainError) as refused:
        await s.move("u2", "f", "r", capacity=2)
    assert refused.value.code is ErrorCode.ROOM_FULL
    # The documented shape (protocol.md §2): every room_full carries the capacity.
    assert refused.value.to_wire("en") == {"code": "room_full", "message": "The room is full. (capacity 2)", "capacity": 2}
    assert (await s.member("u2")).floor_id is None  # nothing changed
    await s.move("u2", "f", "r", capacity=None)  # an owner enters regardless
    assert (await s.move("u0", "f", "r", capacity=2))[0] == []  # already inside: not refused
    assert len(await s.occupants("f", "r")) == 3


async def test_concurrent_entries_never_exceed_capacity(new_store: PresenceStore) -> None:
    s = new_store
    users = [Actor(f"u{i}", "seefeld", f"U{i}") for i in range(20)]
    for i, actor in enumerate(users):
        await s.connect(f"s{i}", actor, 0)

    async def enter(user_id: str) -> bool:
        try:
            await s.move(user_id, "f", "r", capacity=5)
            return True
        except DomainError:
            return False

    results = await asyncio.gather(*(enter(a.user_id) for a in users))
    assert sum(results) == 5 and len(await s.occupants("f", "r")) == 5


async def test_campus_diffs_share_the_floor_sequence(new_store: PresenceStore) -> None:
    s = new_store
    await s.connect("a1", ANNA, 0)
    await s.move("anna", "f", "r", capacity=None)
    diff = await s.campus_diff("f", "room", {"room": {"id": "r"}})
    assert (diff.seq, diff.type, diff.data) == (2, "room", {"room": {"id": "r"}})
    assert (await s.snapshot("f"))[0] == 2


async def test_evacuating_a_room_moves_its_occupants_to_the_hallway(new_store: PresenceStore) -> None:
    s = new_store
    for sid, actor in (("a1", ANNA), ("b1", BEN)):
        await s.connect(sid, actor, 0)
        await s.move(actor.user_id, "f", "r", capacity=None)
    diffs, moved = await s.evacuate_room("f", "r")
    assert sorted(moved) == ["anna", "ben"]
    assert sorted((d.type, d.data["user_id"], d.data["room_id"]) for d in diffs) == [
        ("moved", "anna", None), ("moved", "ben", None)]
    assert await s.occupants("f", "r") == [] and len(await s.occupants("f", None)) == 2


async def test_a_dropped_floor_keeps_its_sequence(new_store: PresenceStore) -> None:
    s = new_store
    await s.connect("a1", ANNA, 0)
    await s.move("anna", "f", "r", capacity=None)
    assert await s.drop_floor("f") == ["anna"]
    member = await s.member("anna")
    assert member is not None and member.floor_id is None
    assert await s.snapshot("f") == (1, [])
    assert kinds((await s.move("anna", "f", None, capacity=None))[0]) == [("f", "joined", 2)]
