"""The call store contract, run against every implementation: the node's memory
store and the Redis store of cluster mode (a real redis-server).

The pure book's finer rules are in ``tests/test_calls.py``; this suite shows the
stores keep them, and that the Redis store keeps them across nodes (two store
instances on one Redis, answering at the same moment)."""

from __future__ import annotations

import asyncio
from typing import AsyncIterator, Awaitable, Callable

import pytest

from presence_server.calls.store_redis import RedisCallStore
from rooms.actors import Actor, Profile, Role
from rooms.errors import DomainError, ErrorCode
from rooms.person import PersonId, person_id
from presence_server.calls.store import CallStore
from presence_server.calls.store_memory import MemoryCallStore
from signalling.calls import CallKind, RingOutcome, Topology
from tests.support.redis_slots import record_script_slots

BEN = Actor("ben", "bergheim", "Ben Brückner", frozenset({Role.STAFF}), Profile("Bauamt", "Ingenieur", ("Brücken",)))
LEA = Actor("lea", "bergheim", "Lea")
ANNA = Actor("anna", "altbach", "Anna")
B, L, A = BEN.person_id, LEA.person_id, ANNA.person_id


def p(user_id: str) -> PersonId:
    """A person of Seefeld, for tests that only need someone."""
    return person_id("seefeld", user_id)

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


async def refusal(awaitable: Awaitable[object]) -> DomainError:
    with pytest.raises(DomainError) as refused:
        await awaitable
    return refused.value


# ------------------------------------------------------------------ room calls


async def test_a_room_call_is_created_joined_and_ended_by_its_last_member(new_store: NewStore) -> None:
    store = await new_store()
    first = await store.join_room_call(B, "r1", now=10.5)
    assert first.created and first.left is None
    assert first.call.kind is CallKind.ROOM and first.call.room_id == "r1" and first.call.members == {B}
    assert first.call.created_at == 10.5 and first.call.topology is Topology.MESH and not first.call.ended
    second = await store.join_room_call(L, "r1", now=11)
    assert not second.created and second.call.id == first.call.id and second.call.members == {B, L}
    again = await store.join_room_call(L, "r1", now=12)
    assert not again.created and again.call == second.call
    assert await store.call_of(L) == second.call
    assert await store.calls_of([B, L, A]) == {B: first.call.id, L: first.call.id}
    assert await store.stats() == (1, 2)

    after = await store.leave(B, now=13)
    assert after is not None and after.members == {L} and not after.ended
    last = await store.leave(L, now=14)
    assert last is not None and last.ended and last.ended_at == 14 and last.members == frozenset()
    assert await store.leave(L, now=15) is None
    assert await store.call_of(L) is None and await store.stats() == (0, 0)
    restarted = await store.join_room_call(B, "r1", now=16)
    assert restarted.created and restarted.call.id != first.call.id


async def test_joining_another_rooms_call_leaves_the_first(new_store: NewStore) -> None:
    store = await new_store()
    await store.join_room_call(B, "r1", now=0)
    await store.join_room_call(L, "r1", now=0)
    moved = await store.join_room_call(B, "r2", now=1)
    assert moved.created and moved.left is not None
    assert moved.left.room_id == "r1" and moved.left.members == {L} and not moved.left.ended


async def test_the_mesh_limit_holds_across_nodes(new_store: NewStore) -> None:
    a, b = await new_store(max_mesh=3), await new_store(max_mesh=3)
    users = [p(f"u{i}") for i in range(8)]
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
    await store.join_room_call(p("a"), "full", now=0)
    await store.join_room_call(p("b"), "full", now=0)
    mine = await store.join_room_call(p("c"), "mine", now=0)
    assert (await code(store.join_room_call(p("c"), "full", now=1)))[0] is ErrorCode.CALL_FULL
    assert await store.call_of(p("c")) == mine.call


async def test_with_an_sfu_the_call_grows_past_the_mesh(new_store: NewStore) -> None:
    store = await new_store(max_mesh=2, sfu=True)
    for user in (p("a"), p("b"), p("c")):
        joined = await store.join_room_call(user, "r", now=0)
    assert joined.call.topology is Topology.SFU and len(joined.call.members) == 3


async def test_leaving_the_room_leaves_its_call_but_not_a_direct_call(new_store: NewStore) -> None:
    store = await new_store()
    await store.join_room_call(B, "r1", now=0)
    assert await store.leave_room(B, "r2", now=1) is None
    left = await store.leave_room(B, "r1", now=1)
    assert left is not None and left.ended
    ring = await store.ring("ring-1", BEN, L, callee_dnd=False, now=2)
    await store.answer(ring.id, L, True, now=3)
    assert await store.leave_room(B, "r1", now=4) is None
    call = await store.call_of(B)
    assert call is not None and call.kind is CallKind.DIRECT


# ------------------------------------------------------------------ relay


async def test_relay_only_between_two_members_of_the_same_call(new_store: NewStore) -> None:
    store = await new_store()
    call = (await store.join_room_call(B, "r1", now=0)).call
    await store.join_room_call(L, "r1", now=0)
    await store.join_room_call(A, "r2", now=0)
    await store.check_relay(B, L, call.id)
    await store.check_relay(L, B, call.id)
    assert (await code(store.check_relay(B, A, call.id)))[0] is ErrorCode.NOT_IN_CALL
    assert (await code(store.check_relay(A, B, call.id)))[0] is ErrorCode.NOT_IN_CALL
    assert (await code(store.check_relay(B, L, "room:other")))[0] is ErrorCode.NOT_IN_CALL
    assert (await code(store.check_relay(B, p("nobody"), call.id)))[0] is ErrorCode.NOT_IN_CALL
    assert (await code(store.check_relay(B, B, call.id)))[0] is ErrorCode.FORBIDDEN
    await store.leave(L, now=1)
    assert (await code(store.check_relay(B, L, call.id)))[0] is ErrorCode.NOT_IN_CALL


# ------------------------------------------------------------------ rings


async def test_a_ring_keeps_its_caller_and_deadline(new_store: NewStore) -> None:
    store = await new_store(ring_timeout=30)
    ring = await store.ring("ring-1", BEN, L, callee_dnd=False, now=100.25)
    assert ring.caller == BEN and ring.callee == L
    assert ring.created_at == 100.25 and ring.expires_at == 130.25
    again = await refusal(store.ring("ring-2", BEN, L, callee_dnd=False, now=101))
    assert (again.code, again.detail) == (ErrorCode.CONFLICT, "already_ringing")
    assert again.extra == {"reason": "already_ringing"}  # machine-readable, as the wire carries it
    assert (await code(store.ring("ring-1", ANNA, L, callee_dnd=False, now=101))) == (
        ErrorCode.CONFLICT, "ring_id_taken")
    assert (await code(store.ring("ring-3", BEN, B, callee_dnd=False, now=101)))[0] is ErrorCode.INVALID_PAYLOAD
    assert (await code(store.ring("ring-4", ANNA, L, callee_dnd=True, now=101)))[0] is ErrorCode.DO_NOT_DISTURB


async def test_accepting_moves_both_parties_into_a_direct_call(new_store: NewStore) -> None:
    store = await new_store()
    ring = await store.ring("ring-1", BEN, L, callee_dnd=False, now=0)
    await store.join_room_call(B, "r1", now=1)
    await store.join_room_call(L, "r1", now=1)
    await store.join_room_call(A, "r1", now=1)
    done = await store.answer(ring.id, L, True, now=2)
    assert done.outcome is RingOutcome.ACCEPTED and done.by == L and done.ring.caller == BEN
    assert done.call is not None and done.call.kind is CallKind.DIRECT and done.call.members == {B, L}
    assert done.call.id == "direct:ring-1"
    assert {k: done.to_wire()[k] for k in ("caller_id", "callee_id", "by")} == {
        "caller_id": "bergheim/ben", "callee_id": "bergheim/lea", "by": "bergheim/lea"}
    # both left the same room call: it is reported once, as it is after both left
    assert [c.members for c in done.left] == [frozenset({A})]
    assert await store.calls_of([B, L, A]) == {
        B: "direct:ring-1", L: "direct:ring-1", A: done.left[0].id}
    in_call = await refusal(store.ring("ring-2", BEN, L, callee_dnd=False, now=3))
    assert (in_call.code, in_call.detail) == (ErrorCode.CONFLICT, "already_in_call")
    assert in_call.extra == {"reason": "already_in_call"}
    ended = await store.leave(L, now=4)
    assert ended is not None and ended.ended and ended.members == {B}
    assert await store.call_of(B) is None


@pytest.mark.parametrize("first", ["accept", "decline", "cancel"])
async def test_a_ring_has_one_resolution_whoever_answers_first(new_store: NewStore, first: str) -> None:
    store = await new_store()
    ring = await store.ring("ring-1", BEN, L, callee_dnd=False, now=0)
    if first == "cancel":
        done = await store.cancel(ring.id, B, now=1)
    else:
        done = await store.answer(ring.id, L, first == "accept", now=1)
    assert done.outcome.value == {"accept": "accepted", "decline": "declined", "cancel": "cancelled"}[first]
    for late in (store.answer(ring.id, L, True, now=2), store.cancel(ring.id, B, now=2),
                 store.expire(ring.id, now=99)):
        assert (await code(late))[0] is ErrorCode.RING_RESOLVED
    assert (await code(store.answer("ring-never", L, True, now=2))) == (ErrorCode.NOT_FOUND, "ring")


async def test_answers_from_two_nodes_at_once_resolve_a_ring_once(new_store: NewStore) -> None:
    a, b = await new_store(), await new_store()
    for round_ in range(20):
        ring = await a.ring(f"ring-{round_}", BEN, L, callee_dnd=False, now=round_)
        results = await asyncio.gather(
            a.answer(ring.id, L, True, now=round_ + 0.5),
            b.answer(ring.id, L, False, now=round_ + 0.5),
            b.cancel(ring.id, B, now=round_ + 0.5),
            return_exceptions=True,
        )
        won = [r for r in results if not isinstance(r, BaseException)]
        lost = [r for r in results if isinstance(r, DomainError)]
        assert len(won) == 1 and len(lost) == 2, results
        assert {e.code for e in lost} == {ErrorCode.RING_RESOLVED}
        await a.leave(B, now=round_ + 0.9)


async def test_only_the_callee_answers_and_only_the_caller_cancels(new_store: NewStore) -> None:
    store = await new_store()
    ring = await store.ring("ring-1", BEN, L, callee_dnd=False, now=0)
    assert (await code(store.answer(ring.id, B, True, now=1))) == (ErrorCode.FORBIDDEN, "not_callee")
    assert (await code(store.cancel(ring.id, L, now=1))) == (ErrorCode.FORBIDDEN, "not_caller")


async def test_unanswered_rings_come_due_and_expire_once(new_store: NewStore) -> None:
    a, b = await new_store(ring_timeout=10), await new_store(ring_timeout=10)
    ring = await a.ring("ring-1", BEN, L, callee_dnd=False, now=0)
    assert await a.due(9.9) == []
    assert (await code(a.expire(ring.id, now=9.9))) == (ErrorCode.CONFLICT, "not_due")
    assert await b.due(10) == [ring.id]
    results = await asyncio.gather(a.expire(ring.id, now=10), b.expire(ring.id, now=10), return_exceptions=True)
    assert sorted(type(r).__name__ for r in results) == ["DomainError", "RingResolution"]
    assert await a.due(100) == []
    late = await a.ring("ring-2", BEN, L, callee_dnd=False, now=20)
    answered = await a.answer(late.id, L, True, now=30)
    assert answered.outcome is RingOutcome.EXPIRED and answered.call is None


async def test_a_party_going_away_ends_their_rings(new_store: NewStore) -> None:
    store = await new_store()
    await store.ring("ring-1", BEN, L, callee_dnd=False, now=0)
    await store.ring("ring-2", ANNA, L, callee_dnd=False, now=0)
    await store.ring("ring-3", BEN, A, callee_dnd=False, now=0)
    gone = await store.callee_unavailable(L, now=1)
    assert sorted((r.ring.id, r.outcome.value) for r in gone) == [
        ("ring-1", "unavailable"), ("ring-2", "unavailable")]
    cancelled = await store.cancel_all(B, now=2)
    assert [(r.ring.id, r.outcome.value, r.by) for r in cancelled] == [("ring-3", "cancelled", B)]
    assert await store.due(1000) == []


async def test_the_same_subject_in_two_towns_is_two_parties(new_store: NewStore) -> None:
    # m.mueller of Altbach and m.mueller of Bergheim are two people: a ring to one
    # is not the other's to answer, and each is in their own call (or none).
    a, b = await new_store(), await new_store()
    altbach = Actor("m.mueller", "altbach", "Martina Müller")
    bergheim = Actor("m.mueller", "bergheim", "Michael Müller")
    ma, mb = altbach.person_id, bergheim.person_id

    ring = await a.ring("ring-1", BEN, ma, callee_dnd=False, now=0)
    assert ring.callee == ma == "altbach/m.mueller"
    assert (await code(b.answer(ring.id, mb, True, now=1))) == (ErrorCode.FORBIDDEN, "not_callee")
    assert (await code(b.cancel(ring.id, mb, now=1))) == (ErrorCode.FORBIDDEN, "not_caller")
    assert await b.callee_unavailable(mb, now=1) == [] and await b.cancel_all(mb, now=1) == []
    assert await a.due(10) == [] and await b.due(31) == [ring.id]  # still pending: nobody took it
    done = await b.answer(ring.id, ma, True, now=2)
    assert done.outcome is RingOutcome.ACCEPTED and done.by == ma
    assert done.call is not None and done.call.members == {B, ma}

    # The other m.mueller is in no call, may join one of their own, and calls_of tells them apart.
    assert await a.call_of(mb) is None
    room = (await b.join_room_call(mb, "r1", now=3)).call
    assert await a.calls_of([ma, mb, p("m.mueller")]) == {ma: done.call.id, mb: room.id}
    assert (await code(a.check_relay(mb, B, done.call.id)))[0] is ErrorCode.NOT_IN_CALL
    await a.check_relay(ma, B, done.call.id)
    # Ringing the other one is neither "ringing yourself" nor "already in a call" with them.
    other = await b.ring("ring-2", altbach, mb, callee_dnd=False, now=4)
    assert other.caller.person_id == ma and other.callee == mb
    assert (await code(a.answer(other.id, ma, True, now=5))) == (ErrorCode.FORBIDDEN, "not_callee")
    ended = await a.leave(ma, now=6)
    assert ended is not None and ended.id == done.call.id and ended.ended
    assert await b.call_of(mb) == room and await b.stats() == (1, 1)


# ------------------------------------------------------------------ notes


async def test_notes_wait_for_the_callee_and_are_taken_once(new_store: NewStore) -> None:
    store = await new_store()
    await store.leave_note(BEN, L, "  Rückruf bitte – Brücke  ", now=5)
    await store.leave_note(ANNA, L, "Hallo", now=6)
    await store.leave_note(BEN, L, "Neue Nachricht", now=7)  # replaces Ben's first note
    assert (await code(store.leave_note(BEN, L, "   ", now=8)))[0] is ErrorCode.INVALID_PAYLOAD
    assert (await code(store.leave_note(BEN, B, "x", now=8)))[0] is ErrorCode.INVALID_PAYLOAD
    # Over its cap, like any text (protocol.md §10).
    assert (await code(store.leave_note(BEN, L, "x" * 1000, now=8)))[0] is ErrorCode.INVALID_PAYLOAD
    notes = await store.take_notes(L)
    assert [(n.caller, n.text, n.created_at) for n in notes] == [(ANNA, "Hallo", 6), (BEN, "Neue Nachricht", 7)]
    assert await store.take_notes(L) == []


async def test_the_redis_store_touches_one_hash_slot_per_script(redis_server, redis_prefix) -> None:  # type: ignore[no-untyped-def]
    store = RedisCallStore(redis_server.url, prefix=redis_prefix, max_mesh=3, ring_timeout=30)
    await store.open()
    try:
        ran = record_script_slots(store)
        await store.join_room_call(B, "r1", now=0)
        ring = await store.ring("ring-1", BEN, L, callee_dnd=False, now=0)
        await store.answer(ring.id, L, True, now=1)
        await store.leave(B, now=2)
        await store.leave_note(ANNA, L, "Hallo", now=3)
        await store.take_notes(L)
        assert {name for name, _ in ran} == {"join_room", "ring", "resolve", "leave", "note", "take_notes"}
        assert all(len(slots) == 1 for _, slots in ran), ran
    finally:
        await store.close()


async def test_a_burst_past_the_pool_size_waits_for_connections_instead_of_failing(redis_server, redis_prefix) -> None:  # type: ignore[no-untyped-def]
    from rooms.redis_link import POOL_CONNECTIONS

    store = RedisCallStore(redis_server.url, prefix=redis_prefix, max_mesh=3, ring_timeout=30)
    await store.open()
    try:
        await store.join_room_call(B, "r1", now=0)
        calls = await asyncio.gather(*(store.call_of(B) for _ in range(POOL_CONNECTIONS * 4)))
        assert {c.id for c in calls if c is not None} == {"room:r1:1"} and None not in calls
    finally:
        await store.close()
