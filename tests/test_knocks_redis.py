"""What the Redis knock store promises beyond the shared contract: one outcome,
one pending knock per knocker and cool-downs held cluster-wide, leftovers of a
node that died mid-operation healed, and a key layout fit for Redis Cluster.

Two store objects on one Redis and prefix are two nodes. What a dead node
leaves behind is written with a plain client, as the node would have left it.
Real redis-server, a unique prefix per test; no mocks, no sleeps.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import AsyncIterator
from typing import Any

import pytest
import redis.asyncio as aioredis

from presence_server.knocks.store_redis import (
    CLAIM_LEASE_MS,
    RESOLVED_LIMIT,
    RESOLVED_MS,
    SLACK_MS,
    RedisKnockStore,
)
from presence_server.knocks.store import new_knock_id
from rooms.actors import Actor
from rooms.errors import DomainError, ErrorCode
from rooms.knocks import Knock, KnockOutcome
from rooms.person import PersonId
from tests.support.redis_server import RedisServer
from tests.support.redis_slots import record_script_slots

BEN = Actor("ben", "bergheim", "Ben")
ANNA = Actor("anna", "altbach", "Anna")
LEA = Actor("lea", "lindenau", "Lea")
JONAS = Actor("jonas", "bergheim", "Jonas")
A, B, L, J = ANNA.person_id, BEN.person_id, LEA.person_id, JONAS.person_id
TIMEOUT, COOLDOWN = 30.0, 20.0


@pytest.fixture
async def raw(redis_server: RedisServer) -> AsyncIterator[aioredis.Redis]:
    """A plain client on the same server, to look at (or leave behind) what a node writes."""
    client = aioredis.Redis.from_url(redis_server.url, decode_responses=False)
    yield client
    await client.aclose()


@pytest.fixture
async def nodes(redis_server: RedisServer, redis_prefix: str) -> AsyncIterator[tuple[RedisKnockStore, RedisKnockStore]]:
    a = RedisKnockStore(redis_server.url, prefix=redis_prefix, timeout=TIMEOUT, cooldown=COOLDOWN)
    b = RedisKnockStore(redis_server.url, prefix=redis_prefix, timeout=TIMEOUT, cooldown=COOLDOWN)
    await a.open()
    await b.open()
    yield a, b
    await a.close()
    await b.close()


async def knock(store: RedisKnockStore, knocker: Actor = BEN, *, room: str = "r", floor: str = "f",
                now: float = 0.0, recipients: frozenset[PersonId] = frozenset({L, J}),
                knock_id: str | None = None) -> Knock:
    return await store.add(knock_id or new_knock_id(floor), knocker, room_id=room, floor_id=floor,
                           recipients=recipients, to_owners=False, message="Hallo", now=now)


async def code(awaitable: Any) -> ErrorCode:
    with pytest.raises(DomainError) as refused:
        await awaitable
    return refused.value.code


def winners(results: list[Any]) -> list[Any]:
    """The successes; every failure must be a ``knock_resolved`` refusal."""
    for r in results:
        if isinstance(r, BaseException):
            assert isinstance(r, DomainError) and r.code is ErrorCode.KNOCK_RESOLVED, r
    return [r for r in results if not isinstance(r, BaseException)]


# -------------------------------------------------------------- one outcome
async def test_two_nodes_racing_to_resolve_give_exactly_one_outcome(nodes) -> None:
    a, b = nodes
    for i in range(100):
        k = await knock(a if i % 2 else b, room=f"r{i}")  # a new room each round: a decline's cool-down
        results = await asyncio.gather(
            a.resolve(k.id, KnockOutcome.ADMITTED, now=1, by=L),
            b.resolve(k.id, KnockOutcome.DECLINED, now=1, by=J),
            b.resolve(k.id, KnockOutcome.EXPIRED, now=1, reason="timeout"),
            a.resolve(k.id, KnockOutcome.CANCELLED, now=1, by=B),
            return_exceptions=True,
        )
        [resolution] = winners(results)
        assert resolution.knock == k
        for store in (a, b):
            assert await store.pending_of(B) is None
            assert await code(store.get(k.id)) is ErrorCode.KNOCK_RESOLVED


async def test_two_nodes_racing_claims_and_answers_give_exactly_one_winner(nodes) -> None:
    a, b = nodes
    for i in range(100):
        k = await knock(a, room=f"r{i}")
        results = await asyncio.gather(
            a.claim(k.id),
            b.claim(k.id),
            b.resolve(k.id, KnockOutcome.DECLINED, now=1, by=J),
            a.resolve(k.id, KnockOutcome.EXPIRED, now=1, reason="timeout"),
            return_exceptions=True,
        )
        [won] = winners(results)
        if isinstance(won, Knock):  # a claim won: no unclaimed answer gets in, the claimer finishes
            assert await code(b.resolve(k.id, KnockOutcome.CANCELLED, now=1, by=B)) is ErrorCode.KNOCK_RESOLVED
            assert await a.due(1000) == [] and await b.due(1000) == []
            claimer = a if results[0] is won else b
            await claimer.resolve(k.id, KnockOutcome.ADMITTED, now=2, by=L, claimed=True)
        assert await code(a.claim(k.id)) is ErrorCode.KNOCK_RESOLVED
        assert await b.pending_of(B) is None


async def test_a_released_claim_lets_the_other_node_answer(nodes) -> None:
    a, b = nodes
    k = await knock(a)
    await a.claim(k.id)
    assert await code(b.get(k.id)) is ErrorCode.KNOCK_RESOLVED
    await a.release(k.id)
    assert await b.get(k.id) == k
    assert (await b.resolve(k.id, KnockOutcome.DECLINED, now=1, reason="room_empty")).knock == k


async def test_the_claim_of_a_node_that_died_mid_admit_lapses(nodes, raw) -> None:
    a, b = nodes
    k = await knock(a)
    await a.claim(k.id)
    # As if claimed a lease ago by a node that never came back.
    (seconds, micros) = await raw.time()
    await raw.zadd(f"{a.prefix}{{f:f}}:claimed", {k.id: seconds * 1000 + micros // 1000 - CLAIM_LEASE_MS - 1})
    assert [x.id for x in await b.due(TIMEOUT)] == [k.id]
    assert (await b.resolve(k.id, KnockOutcome.EXPIRED, now=TIMEOUT, reason="timeout")).knock == k
    assert await code(a.resolve(k.id, KnockOutcome.ADMITTED, now=TIMEOUT, by=L, claimed=True)) \
        is ErrorCode.KNOCK_RESOLVED


# ------------------------------------------------------ knockers, cool-downs
async def test_one_pending_knock_per_knocker_across_nodes(nodes, raw) -> None:
    a, b = nodes
    k = await knock(a)
    assert await code(knock(b, room="other")) is ErrorCode.ALREADY_KNOCKING
    assert await b.pending_of(B) == k
    await b.resolve(k.id, KnockOutcome.CANCELLED, now=1, by=B)
    for i in range(100):
        results = await asyncio.gather(knock(a, room=f"a{i}"), knock(b, room=f"b{i}"), return_exceptions=True)
        [won] = [r for r in results if not isinstance(r, BaseException)]
        [lost] = [r for r in results if isinstance(r, BaseException)]
        assert isinstance(lost, DomainError) and lost.code is ErrorCode.ALREADY_KNOCKING
        assert await a.pending_of(B) == won == await b.pending_of(B)
        loser_room = f"b{i}" if won.room_id == f"a{i}" else f"a{i}"
        assert await a.pending_for_room("f", loser_room) == []
        await a.resolve(won.id, KnockOutcome.CANCELLED, now=1, by=B)
    assert await raw.zcard(f"{a.prefix}{{knocks}}:deadlines") == 0


async def test_a_cooldown_set_on_one_node_is_honoured_on_another(nodes, raw) -> None:
    a, b = nodes
    k = await knock(a, now=100)
    await a.resolve(k.id, KnockOutcome.DECLINED, now=100, by=L)
    with pytest.raises(DomainError) as refused:
        await knock(b, now=110)
    assert refused.value.code is ErrorCode.KNOCK_COOLDOWN and refused.value.extra["retry_after"] == 10
    assert 0 < await raw.pttl(f"{a.prefix}{{u:bergheim/ben}}:cooldowns") <= COOLDOWN * 1000
    other = await knock(b, room="other", now=110)  # another room: no cool-down
    await b.resolve(other.id, KnockOutcome.CANCELLED, now=111, by=B)
    await knock(b, now=120)  # over
    assert await raw.hkeys(f"{a.prefix}{{u:bergheim/ben}}:cooldowns") == []  # elapsed ones are swept


async def test_a_pointer_left_by_a_node_that_died_mid_resolve_does_not_block_the_knocker(nodes, raw) -> None:
    a, b = nodes
    k = await knock(a)
    await a.resolve(k.id, KnockOutcome.CANCELLED, now=1, by=B)
    await raw.set(f"{a.prefix}{{u:bergheim/ben}}:knock", k.id)  # the pointer that node never cleared
    assert await b.pending_of(B) is None
    again = await knock(b, now=2)
    assert await a.pending_of(B) == again


async def test_a_failed_add_takes_the_knockers_pointer_back(nodes) -> None:
    a, b = nodes
    k = await knock(a, ANNA)
    assert await code(knock(b, BEN, knock_id=k.id)) is ErrorCode.CONFLICT  # the id is taken
    assert await b.pending_of(B) is None
    assert await b.get(k.id) == k  # anna's knock is untouched
    await knock(b, BEN)


async def test_a_floor_remembers_the_last_resolved_ids_for_an_hour(nodes, raw) -> None:
    a, b = nodes
    (seconds, micros) = await raw.time()
    ms = seconds * 1000 + micros // 1000
    stale = new_knock_id("f")
    older = {new_knock_id("f"): ms - 1000 - i for i in range(RESOLVED_LIMIT)}
    await raw.zadd(f"{a.prefix}{{f:f}}:resolved", {stale: ms - RESOLVED_MS - 1, **older})
    assert await code(b.get(stale)) is ErrorCode.KNOCK_RESOLVED
    k = await knock(a)
    await a.resolve(k.id, KnockOutcome.CANCELLED, now=1, by=B)
    assert await code(b.get(k.id)) is ErrorCode.KNOCK_RESOLVED
    assert await code(b.get(stale)) is ErrorCode.NOT_FOUND  # over an hour ago: forgotten
    oldest = min(older, key=older.__getitem__)
    assert await code(b.resolve(oldest, KnockOutcome.EXPIRED, now=1)) is ErrorCode.NOT_FOUND  # beyond the limit
    assert await raw.zcard(f"{a.prefix}{{f:f}}:resolved") == RESOLVED_LIMIT


# --------------------------------------------------------- incoming and due
async def test_incoming_no_longer_lists_a_knock_once_it_is_resolved(nodes, raw) -> None:
    a, b = nodes
    k1 = await knock(a, BEN, room="r1", recipients=frozenset({L}))
    k2 = await knock(b, ANNA, room="r2", now=1, recipients=frozenset({L, J}))
    assert [k.id for k in await b.incoming(L)] == [k1.id, k2.id]
    await b.resolve(k1.id, KnockOutcome.ADMITTED, now=1, by=L)
    assert await a.incoming(L) == [k2]
    # An entry a dying node never removed is dropped by the next reader.
    key = f"{a.prefix}{{u:lindenau/lea}}:incoming"
    await raw.sadd(key, k1.id, "k-garbage")
    assert await b.incoming(L) == [k2]
    assert await raw.smembers(key) == {k2.id.encode()}
    await a.claim(k2.id)  # claimed is still pending: still asked
    assert await b.incoming(J) == [k2]


async def test_due_sees_every_nodes_knocks_and_sweeps_deadlines_of_knocks_gone(nodes, raw) -> None:
    a, b = nodes
    k1 = await knock(a, BEN, room="r1", floor="f1", now=0)
    k2 = await knock(b, ANNA, room="r2", floor="f2", now=5)
    assert [k.id for k in await a.due(40)] == [k1.id, k2.id]
    deadlines = f"{a.prefix}{{knocks}}:deadlines"
    fresh, old = new_knock_id("f1"), new_knock_id("f1")
    await b.resolve(k1.id, KnockOutcome.EXPIRED, now=40, reason="timeout")
    await raw.zadd(deadlines, {k1.id: 30})  # a deadline whose remover died
    # No record and no memory of one: swept once well past its time (an add may be in flight).
    await raw.zadd(deadlines, {fresh: 39, old: 39 - SLACK_MS / 1000})
    assert await b.due(40) == [k2]
    assert {m.decode() for m in await raw.zrange(deadlines, 0, -1)} == {k2.id, fresh}


# ------------------------------------------------------------------- layout
async def exercise(a: RedisKnockStore, b: RedisKnockStore) -> None:
    """Every operation, split over two nodes."""
    k = await knock(a, BEN, room="r1", floor="f1")
    await b.get(k.id)
    await b.claim(k.id)
    await b.release(k.id)
    await a.claim(k.id)
    await a.resolve(k.id, KnockOutcome.ADMITTED, now=1, by=L, claimed=True)
    k = await knock(b, BEN, room="r2", floor="f2", now=2)
    await a.resolve(k.id, KnockOutcome.DECLINED, now=3, by=L)  # a cool-down
    await knock(a, ANNA, room="r3", floor="f1", now=4, recipients=frozenset({B}))
    await b.pending_of(A)
    await b.pending_for_room("f1", "r3")
    await a.incoming(B)
    for k in await b.due(1000):
        await b.resolve(k.id, KnockOutcome.EXPIRED, now=1000, reason="timeout")


async def test_every_key_carries_the_prefix_and_a_hash_tag_and_live_ones_expire(nodes, raw) -> None:
    a, b = nodes
    p = re.escape(a.prefix.encode())
    tagged = re.compile(rb"^" + p + rb"(\{(u|f):[^{}]+\}:[a-z]+|\{knocks\}:deadlines)$")
    k = await knock(a, BEN, floor="f1")
    await a.claim(k.id)
    written = {key async for key in raw.scan_iter(match=a.prefix + "*")}
    assert written and all(tagged.match(key) for key in written), written
    persons = {m.group(1) for key in written if (m := re.search(rb"\{u:([^{}]+)\}", key))}
    assert persons == {b"bergheim/ben", b"lindenau/lea", b"bergheim/jonas"}  # a bare subject is never a key
    for name in ("{u:bergheim/ben}:knock", "{u:lindenau/lea}:incoming", "{u:bergheim/jonas}:incoming"):
        assert 0 < await raw.pttl(a.prefix + name) <= TIMEOUT * 1000 + SLACK_MS
    await a.resolve(k.id, KnockOutcome.ADMITTED, now=1, by=L, claimed=True)
    await exercise(a, b)
    written = {key async for key in raw.scan_iter(match=a.prefix + "*")}
    assert all(tagged.match(key) for key in written), written
    # Nothing pending: what is left is the memory of resolved ids and a cool-down, both expiring.
    left = {key.decode().removeprefix(a.prefix) for key in written}
    assert left == {"{f:f1}:resolved", "{f:f2}:resolved", "{u:bergheim/ben}:cooldowns"}
    assert 0 < await raw.pttl(a.prefix + "{f:f1}:resolved") <= RESOLVED_MS
    assert 0 < await raw.pttl(a.prefix + "{u:bergheim/ben}:cooldowns") <= COOLDOWN * 1000


async def test_no_script_touches_keys_of_two_slots(nodes) -> None:
    a, b = nodes
    ran = record_script_slots(a, b)
    await exercise(a, b)
    assert [(script, slots) for script, slots in ran if len(slots) != 1] == []
    assert {script for script, _ in ran} == set(a._scripts)  # every script was checked


async def test_open_and_close_are_idempotent_and_a_closed_store_says_so(
    redis_server: RedisServer, redis_prefix: str
) -> None:
    store = RedisKnockStore(redis_server.url, prefix=redis_prefix, timeout=TIMEOUT, cooldown=COOLDOWN)
    await store.open()
    await store.open()
    await knock(store)
    await store.close()
    await store.close()
    with pytest.raises(RuntimeError, match="open"):
        await store.pending_of(B)
