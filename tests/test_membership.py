"""Membership against a real Redis: who reaps whom, and what a node declared dead does.

The loops are left idle (a period of an hour) and driven by hand - one heartbeat,
one reaper pass - with a clock the test moves, so every case is an exact
sequence: no sleeps, no timing luck.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest
import redis.asyncio as aioredis

from presence_server.cluster.membership import Membership, Rejoin
from rooms.person import PersonId
from rooms.redis_link import RedisLink
from tests.support.redis_server import RedisServer

TTL = 5.0


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


class Lists:
    """The presence store's part, recorded: which sessions were reaped."""

    def __init__(self) -> None:
        self.sessions: dict[str, list[tuple[PersonId, str]]] = {}
        self.removed: list[tuple[str, PersonId, str]] = []

    async def node_sessions(self, node_id: str) -> list[tuple[PersonId, str]]:
        return list(self.sessions.get(node_id, []))

    async def node_lingering(self, node_id: str) -> list[tuple[PersonId, float]]:
        return []

    async def forget_node(self, node_id: str) -> None:
        self.sessions.pop(node_id, None)

    async def on_dead_session(self, node: str, person: PersonId, sid: str) -> None:
        self.removed.append((node, person, sid))

    async def on_dead_linger(self, person: PersonId, since: float) -> None:
        pass


@pytest.fixture
async def raw(redis_server: RedisServer) -> AsyncIterator[aioredis.Redis]:
    client = aioredis.Redis.from_url(redis_server.url, decode_responses=True)
    yield client
    await client.aclose()


@pytest.fixture
async def pair(
    redis_server: RedisServer, redis_prefix: str
) -> AsyncIterator[tuple[Membership, Membership, Lists, Clock]]:
    lists, clock = Lists(), Clock()
    links = [RedisLink(redis_server.url) for _ in range(2)]  # one link per node, as in a cluster
    made = [
        Membership(
            link, prefix=redis_prefix, node_id=name, sessions=lists,  # type: ignore[arg-type]
            heartbeat=3600, check=3600, ttl=TTL, clock=clock,
        )
        for link, name in zip(links, ("node-a", "node-b"))
    ]
    for member in made:
        await member.start(on_dead_session=lists.on_dead_session, on_dead_linger=lists.on_dead_linger)
    yield made[0], made[1], lists, clock
    for member in made:
        await member.close(handover_seconds=0.001)
    for link in links:
        await link.close()


def alive_key(prefix: str, node: str) -> str:
    return f"{prefix}{{node:{node}}}:alive"


async def test_a_node_seen_alive_then_silent_is_reaped_once_and_fenced(pair, raw, redis_prefix: str) -> None:
    a, b, lists, _ = pair
    lists.sessions["node-a"] = [(PersonId("altbach/anna"), "s1"), (PersonId("altbach/anna"), "s2")]
    fenced: list[str] = []
    a.on_fenced(lambda: fenced.append("a"))
    await b._reap_dead()  # sees a alive
    await raw.delete(alive_key(redis_prefix, "node-a"))  # as if a had been silent for the TTL
    await b._reap_dead()
    await a._reap_dead()  # a does not reap itself, and b is alive
    assert b.reaped == ["node-a"] and a.reaped == []
    assert sorted(sid for _, _, sid in lists.removed) == ["s1", "s2"]  # each once
    await a._beat()
    assert fenced == ["a"] and not a.registered and a.fenced == 1
    assert not await raw.exists(alive_key(redis_prefix, "node-a"))  # a fenced node does not beat
    assert await a.rejoin() is Rejoin.FENCED
    assert a.registered and "node-a" in await raw.smembers(f"{redis_prefix}nodes")
    await a._beat()
    assert fenced == ["a"]  # registered anew: beating again
    await b._reap_dead()
    assert b.reaped == ["node-a"]


async def test_after_an_outage_a_survivor_watches_a_full_ttl_before_reaping(pair, raw, redis_prefix: str) -> None:
    a, b, lists, clock = pair
    await b._reap_dead()  # sees a alive ...
    b.redis_state(False)  # ... then Redis goes away: what b saw no longer counts
    await raw.delete(alive_key(redis_prefix, "node-a"))  # every alive key expired meanwhile
    await b._reap_dead()
    clock.now += TTL - 0.1
    await b._reap_dead()
    assert b.reaped == []
    await a._beat()  # a reconnects within the TTL: nobody is reaped
    clock.now += TTL
    await b._reap_dead()
    assert b.reaped == [] and a.registered


async def test_a_node_that_never_comes_back_is_reaped_after_a_watched_ttl(pair, raw, redis_prefix: str) -> None:
    a, b, lists, clock = pair
    b.redis_state(False)
    await raw.delete(alive_key(redis_prefix, "node-a"))
    await b._reap_dead()
    clock.now += TTL
    await b._reap_dead()
    assert b.reaped == ["node-a"]


async def test_a_failed_redis_command_also_ends_what_the_survivor_saw(pair, raw, redis_prefix: str) -> None:
    a, b, _, _ = pair
    await b._reap_dead()
    b._lost_contact()  # what _every does when a job meets a RedisError
    await raw.delete(alive_key(redis_prefix, "node-a"))
    await b._reap_dead()
    assert b.reaped == []


async def test_a_fenced_node_registers_again_only_after_the_reap_is_done(pair, raw, redis_prefix: str) -> None:
    a, b, _, _ = pair
    reaper = f"{redis_prefix}{{node:node-a}}:reaper"
    await raw.set(reaper, "node-b", ex=60)  # b is mid-way through reaping a
    await raw.delete(f"{redis_prefix}{{node:node-a}}:epoch")
    a._heartbeat = 0.01  # rejoin polls at the heartbeat
    rejoin = asyncio.create_task(a.rejoin())
    await asyncio.sleep(0.1)  # several polls: still waiting
    assert not rejoin.done() and not a.registered
    await raw.delete(reaper)
    assert await asyncio.wait_for(rejoin, 5) is Rejoin.FENCED
    assert a.registered


async def test_rejoin_says_lost_when_redis_lost_its_data(pair, raw, redis_prefix: str) -> None:
    a, b, _, _ = pair
    assert await a.rejoin() is Rejoin.KEPT
    keys = [k async for k in raw.scan_iter(match=f"{redis_prefix}*")]
    await raw.delete(*keys)  # an empty Redis, as far as these nodes can tell
    assert await a.rejoin() is Rejoin.LOST
    assert await b.rejoin() is Rejoin.LOST  # a set a new incarnation: b sees it is not the one it knew
    b.settled()
    assert await b.rejoin() is Rejoin.KEPT
    await b._reap_dead()
    assert b.reaped == []  # a registered again: alive


async def test_a_rejoin_keeps_saying_lost_until_the_recovery_settled(pair, raw, redis_prefix: str) -> None:
    a, _, _, _ = pair
    await raw.delete(*[k async for k in raw.scan_iter(match=f"{redis_prefix}*")])
    assert await a.rejoin() is Rejoin.LOST
    assert await a.rejoin() is Rejoin.LOST  # the recovery after the first was cut off: redo it all
    a.settled()
    assert await a.rejoin() is Rejoin.KEPT
