"""The presence store contract, run against every implementation.

A new backend passes this suite before anything else uses it. Stores are
created through ``new_store`` (parametrised); add a backend there.
"""

from __future__ import annotations

import asyncio
from typing import AsyncIterator

import pytest

from presence_server.presence.store_redis import RedisPresenceStore
from presence_server.diffs import FloorDiff
from presence_server.presence.state import Status
from presence_server.presence.store import PresenceStore
from presence_server.presence.store_memory import MemoryPresenceStore
from rooms.actors import Actor, Profile
from rooms.errors import DomainError, ErrorCode
from rooms.person import PersonId, person_id

ANNA = Actor("anna", "altbach", "Anna")
BEN = Actor("ben", "bergheim", "Ben")
A, B = ANNA.person_id, BEN.person_id


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


def u(i: int) -> PersonId:
    """The person of ``Actor(f"u{i}", "seefeld", ...)``."""
    return person_id("seefeld", f"u{i}")


def kinds(diffs: list[FloorDiff]) -> list[tuple[str, str, int]]:
    return [(d.floor_id, d.type, d.seq) for d in diffs]


async def test_moves_on_one_floor_carry_consecutive_sequence_numbers(new_store: PresenceStore) -> None:
    s = new_store
    await s.connect("a1", ANNA, 0)
    await s.connect("b1", BEN, 0)
    assert kinds((await s.move(A, "f", None, capacity=None))[0]) == [("f", "joined", 1)]
    assert kinds((await s.move(B, "f", "r", capacity=None))[0]) == [("f", "joined", 2)]
    diffs, before = await s.move(A, "f", "r", capacity=None)
    assert kinds(diffs) == [("f", "moved", 3)] and diffs[0].data == {"person": A, "from": None, "room_id": "r"}
    assert (before.floor_id, before.room_id) == ("f", None)
    assert (await s.move(A, "f", "r", capacity=None))[0] == []
    assert {m.person for m in await s.occupants("f", "r")} == {A, B}


async def test_changing_floors_leaves_one_and_joins_the_other(new_store: PresenceStore) -> None:
    s = new_store
    await s.connect("a1", ANNA, 0)
    await s.move(A, "f1", "r1", capacity=None)
    diffs, _ = await s.move(A, "f2", None, capacity=None)
    assert kinds(diffs) == [("f1", "left", 2), ("f2", "joined", 1)]
    assert await s.occupants("f1", "r1") == []
    member = await s.member(A)
    assert member is not None and (member.floor_id, member.room_id) == ("f2", None)


async def test_the_joined_diff_carries_the_member_as_watchers_see_it(new_store: PresenceStore) -> None:
    s = new_store
    actor = Actor("lea", "lindenau", "Lea", profile=Profile("Bauamt", "Ingenieurin", ("Naturschutz",)))
    await s.connect("l1", actor, 0)
    await s.set_status("l1", Status.BUSY, "Termin", all_sessions=True)
    diffs, _ = await s.move(actor.person_id, "f", "r", capacity=None)
    assert diffs[0].data["member"] == {
        "person": "lindenau/lea", "user_id": "lea", "name": "Lea", "municipality": "lindenau", "guest": False,
        "profile": {"department": "Bauamt", "job_title": "Ingenieurin", "skills": ["Naturschutz"]},
        "status": "busy", "text": "Termin", "room_id": "r",
    }
    seq, members = await s.snapshot("f")
    assert seq == 1 and members == [diffs[0].data["member"]]


async def test_a_second_session_inherits_status_and_emits_nothing(new_store: PresenceStore) -> None:
    s = new_store
    await s.connect("a1", ANNA, 0)
    await s.move(A, "f", None, capacity=None)
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
    await s.move(A, "f", None, capacity=None)
    await s.set_status("a1", first, "", all_sessions=False)
    diffs, member = await s.set_status("a2", second, "", all_sessions=False)
    assert member.status is winner
    _, members = await s.snapshot("f")
    assert members[0]["status"] == winner.value


async def test_the_most_recent_text_wins_among_equal_statuses_and_diffs_only_on_change(new_store: PresenceStore) -> None:
    s = new_store
    await s.connect("a1", ANNA, 0)
    await s.connect("a2", ANNA, 0)
    await s.move(A, "f", None, capacity=None)
    await s.set_status("a1", Status.BUSY, "alt", all_sessions=False)
    diffs, member = await s.set_status("a2", Status.BUSY, "neu", all_sessions=False)
    assert member.text == "neu"
    assert [(d.type, d.data) for d in diffs] == [("status", {"person": A, "status": "busy", "text": "neu"})]
    assert (await s.set_status("a2", Status.BUSY, "neu", all_sessions=False))[0] == []


async def test_the_last_session_lingers_and_expiry_forgets_the_user(new_store: PresenceStore) -> None:
    s = new_store
    await s.connect("a1", ANNA, 0)
    await s.move(A, "f", "r", capacity=None)
    diffs, since = await s.disconnect("a1", 10.0)
    assert diffs == [] and since == 10.0
    lingering = await s.member(A)
    assert lingering is not None and lingering.sessions == 0 and lingering.room_id == "r"
    diffs, gone = await s.expire(A, 10.0)
    assert kinds(diffs) == [("f", "left", 2)]
    assert gone is not None and (gone.floor_id, gone.room_id) == ("f", "r")
    assert await s.member(A) is None and await s.occupants("f", "r") == []


async def test_a_stale_expiry_after_a_reconnect_does_nothing(new_store: PresenceStore) -> None:
    s = new_store
    await s.connect("a1", ANNA, 0)
    await s.move(A, "f", None, capacity=None)
    await s.disconnect("a1", 10.0)
    await s.connect("a2", ANNA, 11.0)
    assert await s.expire(A, 10.0) == ([], None)
    await s.disconnect("a2", 20.0)
    assert await s.expire(A, 10.0) == ([], None)
    assert kinds((await s.expire(A, 20.0))[0]) == [("f", "left", 2)]


async def test_disconnecting_an_unknown_session_changes_nothing(new_store: PresenceStore) -> None:
    assert await new_store.disconnect("nobody", 1.0) == ([], None)


async def test_a_changed_name_is_shown_as_a_join(new_store: PresenceStore) -> None:
    s = new_store
    await s.connect("a1", ANNA, 0)
    await s.move(A, "f", None, capacity=None)
    diffs = await s.update_actor(Actor("anna", "altbach", "Dr. Anna"))
    assert kinds(diffs) == [("f", "joined", 2)] and diffs[0].data["member"]["name"] == "Dr. Anna"
    assert await s.update_actor(Actor("anna", "altbach", "Dr. Anna")) == []


async def test_capacity_is_checked_with_the_move(new_store: PresenceStore) -> None:
    s = new_store
    for i in range(3):
        await s.connect(f"s{i}", Actor(f"u{i}", "seefeld", f"U{i}"), 0)
    await s.move(u(0), "f", "r", capacity=2)
    await s.move(u(1), "f", "r", capacity=2)
    with pytest.raises(DomainError) as refused:
        await s.move(u(2), "f", "r", capacity=2)
    assert refused.value.code is ErrorCode.ROOM_FULL
    # The documented shape (protocol.md §2): every room_full carries the capacity.
    assert refused.value.to_wire("en") == {"code": "room_full", "message": "The room is full. (capacity 2)", "capacity": 2}
    assert (await s.member(u(2))).floor_id is None  # nothing changed
    await s.move(u(2), "f", "r", capacity=None)  # an owner enters regardless
    assert (await s.move(u(0), "f", "r", capacity=2))[0] == []  # already inside: not refused
    assert len(await s.occupants("f", "r")) == 3


async def test_concurrent_entries_never_exceed_capacity(new_store: PresenceStore) -> None:
    s = new_store
    users = [Actor(f"u{i}", "seefeld", f"U{i}") for i in range(20)]
    for i, actor in enumerate(users):
        await s.connect(f"s{i}", actor, 0)

    async def enter(person: PersonId) -> bool:
        try:
            await s.move(person, "f", "r", capacity=5)
            return True
        except DomainError:
            return False

    results = await asyncio.gather(*(enter(a.person_id) for a in users))
    assert sum(results) == 5 and len(await s.occupants("f", "r")) == 5


async def test_campus_diffs_share_the_floor_sequence(new_store: PresenceStore) -> None:
    s = new_store
    await s.connect("a1", ANNA, 0)
    await s.move(A, "f", "r", capacity=None)
    diff = await s.campus_diff("f", "room", {"room": {"id": "r"}})
    assert (diff.seq, diff.type, diff.data) == (2, "room", {"room": {"id": "r"}})
    assert (await s.snapshot("f"))[0] == 2


async def test_evacuating_a_room_moves_its_occupants_to_the_hallway(new_store: PresenceStore) -> None:
    s = new_store
    for sid, actor in (("a1", ANNA), ("b1", BEN)):
        await s.connect(sid, actor, 0)
        await s.move(actor.person_id, "f", "r", capacity=None)
    diffs, moved = await s.evacuate_room("f", "r")
    assert sorted(moved) == ["altbach/anna", "bergheim/ben"]
    assert sorted((d.type, d.data["person"], d.data["room_id"]) for d in diffs) == [
        ("moved", A, None), ("moved", B, None)]
    assert await s.occupants("f", "r") == [] and len(await s.occupants("f", None)) == 2


async def test_a_dropped_floor_keeps_its_sequence(new_store: PresenceStore) -> None:
    s = new_store
    await s.connect("a1", ANNA, 0)
    await s.move(A, "f", "r", capacity=None)
    assert await s.drop_floor("f") == [A]
    member = await s.member(A)
    assert member is not None and member.floor_id is None
    assert await s.snapshot("f") == (1, [])
    assert kinds((await s.move(A, "f", None, capacity=None))[0]) == [("f", "joined", 2)]


async def test_the_same_subject_in_two_municipalities_is_two_presences(new_store: PresenceStore) -> None:
    # Each town's identity provider issues its own subjects: m.mueller of Altbach
    # and m.mueller of Bergheim are two people and must never share a presence.
    s = new_store
    altbach = Actor("m.mueller", "altbach", "Martina Müller")
    bergheim = Actor("m.mueller", "bergheim", "Michael Müller")
    ma, mb = altbach.person_id, bergheim.person_id
    assert ma != mb
    _, first = await s.connect("ma1", altbach, 0)
    _, second = await s.connect("mb1", bergheim, 0)
    assert (first.person, first.sessions) == (ma, 1) and (second.person, second.sessions) == (mb, 1)
    assert kinds((await s.move(ma, "f", "r", capacity=2))[0]) == [("f", "joined", 1)]
    assert kinds((await s.move(mb, "f", "r", capacity=2))[0]) == [("f", "joined", 2)]  # two people: room not full
    assert {m.person for m in await s.occupants("f", "r")} == {ma, mb}

    seq, members = await s.snapshot("f")
    assert seq == 2 and sorted((m["person"], m["name"]) for m in members) == [
        ("altbach/m.mueller", "Martina Müller"), ("bergheim/m.mueller", "Michael Müller")]

    # Statuses are independent: one's status change neither shows nor merges into the other's.
    diffs, member = await s.set_status("mb1", Status.DO_NOT_DISTURB, "Ratssitzung", all_sessions=True)
    assert [(d.type, d.data) for d in diffs] == [
        ("status", {"person": mb, "status": "do_not_disturb", "text": "Ratssitzung"})]
    assert member.person == mb
    other = await s.member(ma)
    assert other is not None and (other.status, other.text, other.sessions) == (Status.AVAILABLE, "", 1)
    _, members = await s.snapshot("f")
    assert {m["person"]: m["status"] for m in members} == {ma: "available", mb: "do_not_disturb"}

    # One leaving (last session, then expiry) takes only that one away.
    assert await s.disconnect("ma1", 10.0) == ([], 10.0)
    still = await s.member(mb)
    assert still is not None and still.sessions == 1
    diffs, gone = await s.expire(ma, 10.0)
    assert [(d.type, d.data) for d in diffs] == [("left", {"person": ma})]
    assert gone is not None and gone.person == ma
    assert await s.member(ma) is None
    assert [m.person for m in await s.occupants("f", "r")] == [mb]
    seq, members = await s.snapshot("f")
    assert seq == 4 and [(m["person"], m["status"]) for m in members] == [(mb, "do_not_disturb")]
    assert await s.expire(mb, 10.0) == ([], None)  # the other's presence is no linger of the first

    # ...and the one who came back is a new presence beside the other, not a merge into it.
    await s.connect("ma2", altbach, 11.0)
    await s.move(ma, "f", None, capacity=None)
    diffs, _ = await s.leave_floor(mb)
    assert [(d.type, d.data) for d in diffs] == [("left", {"person": mb})]
    member = await s.member(ma)
    assert member is not None and (member.floor_id, member.room_id, member.status) == ("f", None, Status.AVAILABLE)
