"""The call store contract, run against every implementation: the node's memory
store and the Redis store of cluster mode (a real redis-server).

The pure book's finer rules are in ``tests/test_calls.py``; this suite shows the
stores keep them, and that the Redis store keeps them across nodes (two store
instances on one Redis, answering at the same moment)."""

from __future__ import annotations

import asyncio
from typing import AsyncIterator, Awaitable, Callable

import pytest

from presence_server.cluster.calls_redis import RedisCallStore
from rooms.actors import Actor, Profile, Role
from rooms.errors import DomainError, ErrorCode
from signalling.call_store import CallStore, MemoryCallStore
from signalling.calls import CallKind, RingOutcome, Topology
from tests.support.redis_slots import record_script_slots

BEN = Actor("ben", "bergheim", "Ben Brückner", frozenset({Role.STAFF}), Profile("Bauamt", "Ingenieur", ("Brücken",)))
LEA = Actor("lea", "bergheim", "Lea")
ANNA = Actor("anna", "altbach", "Anna")

NewStore = Callable[..., Awaitable[CallStore]]


@pytest.fixture(params=["memory", "redis"])
async def new_store(request: pytest.FixtureRequest) -> AsyncIterator[NewStore]:
    """Makes stores; for Redis, every store made shares one prefix: they are two
    nodes of one cluster. Memory stores cannot be shared, so "another node" is the
    same store there."""
    opened: list[CallStore] = []
    shared: list[CallStore] = []

    async def make(max_mesh: int = 3, ring_timeout: float = 30, sfu: bool = False) -> CallStore:
        store: CallStore
        if request.param == "redis":
            url = request.getfixturevalue("redis_server").url
            prefix = request.getfixturevalue("redis_prefix")
            store = RedisCallStore(url, prefix=prefix, max_mesh=max_mesh, ring_timeout=ring_timeout, sfu=sfu)
        elif shared:
            return shared[0]
        else:
            store = MemoryCallStore(max_mesh=max_mesh, ring_timeout=ring_timeout, sfu=sfu)
        await store.open()
        opened.append(store)
        shared.append(store)
        return store

    yield make
    for store in opened:
        await store.close()


async def code(awaitable: Awaitable[object]) -> tuple[ErrorCode, str | None]:
    with pytest.raises(DomainError) as refused:
        await awaitable
    return refused.value.code, refused.value.detail


# ------------------------------------------------------------------ room calls


async def test_a_room_call_is_created_joined_and_ended_by_its_last_member(new_store: NewStore) -> None:
    store = await new_store()
    first = await store.join_room_call("ben", "r1", now=10.5)
    assert first.created and first.left is None
    assert first.call.kind is CallKind.ROOM and first.call.room_id == "r1" and first.call.members == {"ben"}
    assert first.call.created_at == 10.5 and first.call.topology is Topology.MESH and not first.call.ended
    second = await store.join_room_call("lea", "r1", now=11)
    assert not second.created and second.call.id == first.call.id and second.call.members == {"ben", "lea"}
    again = await store.join_room_call("lea", "r1", now=12)
    assert not again.created and again.call == second.call
    assert await store.call_of("lea") == second.call
    assert await store.calls_of(["ben", "lea", "anna"]) == {"ben": first.call.id, "lea": first.call.id}
    assert await store.stats() == (1, 2)

    after = await store.leave("ben", now=13)
    assert after is not None and after.members == {"lea"} and not after.ended
    last = await store.leave("lea", now=14)
    assert last is not None and last.ended and last.ended_at == 14 and last.members == frozenset()
    assert await store.leave("lea", now=15) is None
    assert await store.call_of("lea") is None and await store.stats() == (0, 0)
    restarted = await store.join_room_call("ben", "r1", now=16)
    assert restarted.created and restarted.call.id != first.call.id


async def test_joining_another_rooms_call_leaves_the_first(new_store: NewStore) -> None:
    store = await new_store()
    await store.join_room_call("ben", "r1", now=0)
    await store.join_room_call("lea", "r1", now=0)
    moved = await store.join_room_call("ben", "r2", now=1)
    assert moved.created and moved.left is not None
    assert moved.left.room_id == "r1" and moved.left.members == {"lea"} and not moved.left.ended


async def test_the_mesh_limit_holds_across_nodes(new_store: NewStore) -> None:
    a, b = await new_store(max_mesh=3), await new_store(max_mesh=3)
    users = [f"u{i}" for i in range(8)]
    results = await asyncio.gather(
        *((a if i % 2 else b).join_room_call(u, "r1", now=0) for i, u in enumerate(users)), return_exceptions=True
    )
    joined = [r for r in results if not isinstance(r, BaseException)]
    refusals = [r for r in results if isinstance(r, DomainError)]
    assert len(joined) == 3 and len(refusals) == 5
    assert {r.code for r in refusals} == {ErrorCode.CALL_FULL} and refusals[0].extra == {"max_mesh": 3}
    inside = {u for u in users if await b.call_of(u) is not None}
    assert len(inside) == 3 and await a.stats() == (1, 3)


async def test_a_refused_join_leaves_the_user_in_their_call(new_store: NewStore) -> None:
    store = await new_store(max_mesh=2)
    await store.join_room_call("a", "full", now=0)
    await store.join_room_call("b", "full", now=0)
    mine = await store.join_room_call("c", "mine", now=0)
    assert (await code(store.join_room_call("c", "full", now=1)))[0] is ErrorCode.CALL_FULL
    assert await store.call_of("c") == mine.call


async def test_with_an_sfu_the_call_grows_past_the_mesh(new_store: NewStore) -> None:
    store = await new_store(max_mesh=2, sfu=True)
    for user in ("a", "b", "c"):
        joined = await store.join_room_call(user, "r", now=0)
    assert joined.call.topology is Topology.SFU and len(joined.call.members) == 3


async def test_leaving_the_room_leaves_its_call_but_not_a_direct_call(new_store: NewStore) -> None:
    store = await new_store()
    await store.join_room_call("ben", "r1", now=0)
    assert await store.leave_room("ben", "r2", now=1) is None
    left = await store.leave_room("ben", "r1", now=1)
    assert left is not None and left.ended
    ring = await store.ring("ring-1", BEN, "lea", callee_dnd=False, now=2)
    await store.answer(ring.id, "lea", True, now=3)
    assert await store.leave_room("ben", "r1", now=4) is None
    call = await store.call_of("ben")
    assert call is not None and call.kind is CallKind.DIRECT


# ------------------------------------------------------------------ relay


async def test_relay_only_between_two_members_of_the_same_call(new_store: NewStore) -> None:
    store = await new_store()
    call = (await store.join_room_call("ben", "r1", now=0)).call
    await store.join_room_call("lea", "r1", now=0)
    await store.join_room_call("anna", "r2", now=0)
    await store.check_relay("ben", "lea", call.id)
    await store.check_relay("lea", "ben", call.id)
    assert (await code(store.check_relay("ben", "anna", call.id)))[0] is ErrorCode.NOT_IN_CALL
    assert (await code(store.check_relay("anna", "ben", call.id)))[0] is ErrorCode.NOT_IN_CALL
    assert (await code(store.check_relay("ben", "lea", "room:other")))[0] is ErrorCode.NOT_IN_CALL
    assert (await code(store.check_relay("ben", "nobody", call.id)))[0] is ErrorCode.NOT_IN_CALL
    assert (await code(store.check_relay("ben", "ben", call.id)))[0] is ErrorCode.FORBIDDEN
    await store.leave("lea", now=1)
    assert (await code(store.check_relay("ben", "lea", call.id)))[0] is ErrorCode.NOT_IN_CALL


# ------------------------------------------------------------------ rings


async def test_a_ring_keeps_its_caller_and_deadline(new_store: NewStore) -> None:
    store = await new_store(ring_timeout=30)
    ring = await store.ring("ring-1", BEN, "lea", callee_dnd=False, now=100.25)
    assert ring.caller == BEN and ring.callee == "lea"
    assert ring.created_at == 100.25 and ring.expires_at == 130.25
    assert (await code(store.ring("ring-2", BEN, "lea", callee_dnd=False, now=101))) == (
        ErrorCode.CONFLICT, "already_ringing")
    assert (await code(store.ring("ring-1", ANNA, "lea", callee_dnd=False, now=101))) == (
        ErrorCode.CONFLICT, "ring_id_taken")
    assert (await code(store.ring("ring-3", BEN, "ben", callee_dnd=False, now=101)))[0] is ErrorCode.INVALID_PAYLOAD
    assert (await code(store.ring("ring-4", ANNA, "lea", callee_dnd=True, now=101)))[0] is ErrorCode.DO_NOT_DISTURB


async def test_accepting_moves_both_parties_into_a_direct_call(new_store: NewStore) -> None:
    store = await new_store()
    ring = await store.ring("ring-1", BEN, "lea", callee_dnd=False, now=0)
    await store.join_room_call("ben", "r1", now=1)
    await store.join_room_call("lea", "r1", now=1)
    await store.join_room_call("anna", "r1", now=1)
    done = await store.answer(ring.id, "lea", True, now=2)
    assert done.outcome is RingOutcome.ACCEPTED and done.by == "lea" and done.ring.caller == BEN
    assert done.call is not None and done.call.kind is CallKind.DIRECT and done.call.members == {"ben", "lea"}
    assert done.call.id == "direct:ring-1"
    # both left the same room call: it is reported once, as it is after both left
    assert [c.members for c in done.left] == [frozenset({"anna"})]
    assert await store.calls_of(["ben", "lea", "anna"]) == {
        "ben": "direct:ring-1", "lea": "direct:ring-1", "anna": done.left[0].id}
    assert (await code(store.ring("ring-2", BEN, "lea", callee_dnd=False, now=3))) == (
        ErrorCode.CONFLICT, "already_in_call")
    ended = await store.leave("lea", now=4)
    assert ended is not None and ended.ended and ended.members == {"ben"}
    assert await store.call_of("ben") is None


@pytest.mark.parametrize("first", ["accept", "decline", "cancel"])
async def test_a_ring_has_one_resolution_whoever_answers_first(new_store: NewStore, first: str) -> None:
    store = await new_store()
    ring = await store.ring("ring-1", BEN, "lea", callee_dnd=False, now=0)
    if first == "cancel":
        done = await store.cancel(ring.id, "ben", now=1)
    else:
        done = await store.answer(ring.id, "lea", first == "accept", now=1)
    assert done.outcome.value == {"accept": "accepted", "decline": "declined", "cancel": "cancelled"}[first]
    for late in (store.answer(ring.id, "lea", True, now=2), store.cancel(ring.id, "ben", now=2),
                 store.expire(ring.id, now=99)):
        assert (await code(late))[0] is ErrorCode.RING_RESOLVED
    assert (await code(store.answer("ring-never", "lea", True, now=2))) == (ErrorCode.NOT_FOUND, "ring")


async def test_answers_from_two_nodes_at_once_resolve_a_ring_once(new_store: NewStore) -> None:
    a, b = await new_store(), await new_store()
    for round_ in range(20):
        ring = await a.ring(f"ring-{round_}", BEN, "lea", callee_dnd=False, now=round_)
        results = await asyncio.gather(
            a.answer(ring.id, "lea", True, now=round_ + 0.5),
            b.answer(ring.id, "lea", False, now=round_ + 0.5),
            b.cancel(ring.id, "ben", now=round_ + 0.5),
            return_exceptions=True,
        )
        won = [r for r in results if not isinstance(r, BaseException)]
        lost = [r for r in results if isinstance(r, DomainError)]
        assert len(won) == 1 and len(lost) == 2, results
        assert {e.code for e in lost} == {ErrorCode.RING_RESOLVED}
        await a.leave("ben", now=round_ + 0.9)


async def test_only_the_callee_answers_and_only_the_caller_cancels(new_store: NewStore) -> None:
    store = await new_store()
    ring = await store.ring("ring-1", BEN, "lea", callee_dnd=False, now=0)
    assert (await code(store.answer(ring.id, "ben", True, now=1))) == (ErrorCode.FORBIDDEN, "not_callee")
    assert (await code(store.cancel(ring.id, "lea", now=1))) == (ErrorCode.FORBIDDEN, "not_caller")


async def test_unanswered_rings_come_due_and_expire_once(new_store: NewStore) -> None:
    a, b = await new_store(ring_timeout=10), await new_store(ring_timeout=10)
    ring = await a.ring("ring-1", BEN, "lea", callee_dnd=False, now=0)
    assert await a.due(9.9) == []
    assert (await code(a.expire(ring.id, now=9.9))) == (ErrorCode.CONFLICT, "not_due")
    assert await b.due(10) == [ring.id]
    results = await asyncio.gather(a.expire(ring.id, now=10), b.expire(ring.id, now=10), return_exceptions=True)
    assert sorted(type(r).__name__ for r in results) == ["DomainError", "RingResolution"]
    assert await a.due(100) == []
    late = await a.ring("ring-2", BEN, "lea", callee_dnd=False, now=20)
    answered = await a.answer(late.id, "lea", True, now=30)
    assert answered.outcome is RingOutcome.EXPIRED and answered.call is None


async def test_a_party_going_away_ends_their_rings(new_store: NewStore) -> None:
    store = await new_store()
    await store.ring("ring-1", BEN, "lea", callee_dnd=False, now=0)
    await store.ring("ring-2", ANNA, "lea", callee_dnd=False, now=0)
    await store.ring("ring-3", BEN, "anna", callee_dnd=False, now=0)
    gone = await store.callee_unavailable("lea", now=1)
    assert sorted((r.ring.id, r.outcome.value) for r in gone) == [
        ("ring-1", "unavailable"), ("ring-2", "unavailable")]
    cancelled = await store.cancel_all("ben", now=2)
    assert [(r.ring.id, r.outcome.value, r.by) for r in cancelled] == [("ring-3", "cancelled", "ben")]
    assert await store.due(1000) == []


# ------------------------------------------------------------------ notes


async def test_notes_wait_for_the_callee_and_are_taken_once(new_store: NewStore) -> None:
    store = await new_store()
    await store.leave_note(BEN, "lea", "  Rückruf bitte – Brücke  ", now=5)
    await store.leave_note(ANNA, "lea", "Hallo", now=6)
    await store.leave_note(BEN, "lea", "Neue Nachricht", now=7)  # replaces Ben's first note
    assert (await code(store.leave_note(BEN, "lea", "   ", now=8)))[0] is ErrorCode.INVALID_PAYLOAD
    assert (await code(store.leave_note(BEN, "ben", "x", now=8)))[0] is ErrorCode.INVALID_PAYLOAD
    # Over its cap, like any text (protocol.md §10).
    assert (await code(store.leave_note(BEN, "lea", "x" * 1000, now=8)))[0] is ErrorCode.INVALID_PAYLOAD
    notes = await store.take_notes("lea")
    assert [(n.caller, n.text, n.created_at) for n in notes] == [(ANNA, "Hallo", 6), (BEN, "Neue Nachricht", 7)]
    assert await store.take_notes("lea") == []


async def test_the_redis_store_touches_one_hash_slot_per_script(redis_server, redis_prefix) -> None:  # type: ignore[no-untyped-def]
    store = RedisCallStore(redis_server.url, prefix=redis_prefix, max_mesh=3, ring_timeout=30)
    await store.open()
    try:
        ran = record_script_slots(store)
        await store.join_room_call("ben", "r1", now=0)
        ring = await store.ring("ring-1", BEN, "lea", callee_dnd=False, now=0)
        await store.answer(ring.id, "lea", True, now=1)
        await store.leave("ben", now=2)
        await store.leave_note(ANNA, "lea", "Hallo", now=3)
        await store.take_notes("lea")
        assert {name for name, _ in ran} == {"join_room", "ring", "resolve", "leave", "note", "take_notes"}
        assert all(len(slots) == 1 for _, slots in ran), ran
    finally:
        await store.close()


async def test_a_burst_past_the_pool_size_waits_for_connections_instead_of_failing(redis_server, redis_prefix) -> None:  # type: ignore[no-untyped-def]
    from presence_server.cluster.redis_scripted import POOL_CONNECTIONS

    store = RedisCallStore(redis_server.url, prefix=redis_prefix, max_mesh=3, ring_timeout=30)
    await store.open()
    try:
        await store.join_room_call("ben", "r1", now=0)
        calls = await asyncio.gather(*(store.call_of("ben") for _ in range(POOL_CONNECTIONS * 4)))
        assert {c.id for c in calls if c is not None} == {"room:r1:1"} and None not in calls
    finally:
        await store.close()
