"""The Redis bus against a real redis-server: routing, order, echoes only to on_echo, outages."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from presence_server.cluster.bus_redis import RedisBus
from tests.support.redis_server import RedisServer


class Inbox:
    def __init__(self) -> None:
        self.messages: list[tuple[str, dict[str, Any]]] = []
        self.states: list[bool] = []
        self._changed = asyncio.Condition()

    def on_message(self, channel: str, body: dict[str, Any]) -> None:
        self.messages.append((channel, body))
        asyncio.get_running_loop().create_task(self._notify())

    async def on_state(self, connected: bool) -> None:
        self.states.append(connected)
        await self._notify()

    async def _notify(self) -> None:
        async with self._changed:
            self._changed.notify_all()

    async def until(self, predicate, timeout: float = 5.0) -> None:
        async with self._changed:
            await asyncio.wait_for(self._changed.wait_for(lambda: predicate(self)), timeout)


async def start_bus(url: str, node: str, prefix: str) -> tuple[RedisBus, Inbox]:
    bus, inbox = RedisBus(url, node_id=node, prefix=prefix), Inbox()
    await bus.start(inbox.on_message, inbox.on_state)
    return bus, inbox


@pytest.fixture
async def two_buses(redis_server: RedisServer, redis_prefix: str):
    a, inbox_a = await start_bus(redis_server.url, "node-a", redis_prefix)
    b, inbox_b = await start_bus(redis_server.url, "node-b", redis_prefix)
    yield a, inbox_a, b, inbox_b
    await a.close()
    await b.close()


async def test_a_node_receives_only_the_channels_it_subscribed_and_never_its_own(two_buses) -> None:
    a, inbox_a, b, inbox_b = two_buses
    await a.subscribe("f:projekt")
    await b.subscribe("f:projekt")
    await a.publish([("f:altbach-eg", {"n": 1}), ("f:projekt", {"n": 2})])
    await b.publish([("f:projekt", {"n": 3})])  # a sentinel after a's messages
    await inbox_a.until(lambda i: len(i.messages) == 1)
    await inbox_b.until(lambda i: len(i.messages) == 1)
    assert inbox_a.messages == [("f:projekt", {"n": 3})]  # not its own 2
    assert inbox_b.messages == [("f:projekt", {"n": 2})]  # not altbach-eg, not its own 3


async def test_a_node_hears_its_own_messages_as_echoes_in_their_place_among_the_others(
    redis_server: RedisServer, redis_prefix: str
) -> None:
    """What FloorOrder relies on: the channel shows how far a floor's stream has come,
    this node's own messages included (on_echo, never on_message)."""
    heard = Inbox()  # one stream: ("echo" | "other", n)
    a = RedisBus(redis_server.url, node_id="node-a", prefix=redis_prefix)
    await a.start(lambda ch, body: heard.on_message("other", body), heard.on_state,
                  lambda ch, body: heard.on_message("echo", body))
    b, _ = await start_bus(redis_server.url, "node-b", redis_prefix)
    try:
        await a.subscribe("f:projekt")
        for n in range(0, 60, 3):
            await a.publish([("f:projekt", {"n": n})])
            await b.publish([("f:projekt", {"n": n + 1}), ("f:projekt", {"n": n + 2})])
        await heard.until(lambda i: len(i.messages) == 60)
        assert [body["n"] for _, body in heard.messages] == list(range(60))  # publish order, echoes in place
        assert [kind for kind, body in heard.messages if body["n"] % 3 == 0] == ["echo"] * 20
        assert [kind for kind, body in heard.messages if body["n"] % 3] == ["other"] * 40
    finally:
        await a.close()
        await b.close()


async def test_messages_from_one_publisher_arrive_in_order(two_buses) -> None:
    a, _, b, inbox_b = two_buses
    await b.subscribe("f:projekt")
    for start in range(0, 1000, 100):
        await a.publish([("f:projekt", {"seq": n}) for n in range(start, start + 100)])
    await inbox_b.until(lambda i: len(i.messages) == 1000)
    assert [body["seq"] for _, body in inbox_b.messages] == list(range(1000))


async def test_after_unsubscribing_a_node_receives_nothing_more(two_buses) -> None:
    a, inbox_a, b, inbox_b = two_buses
    await b.subscribe("f:projekt")
    await b.subscribe("u:anna")
    await a.publish([("f:projekt", {"n": 1})])
    await inbox_b.until(lambda i: len(i.messages) == 1)
    await b.unsubscribe("f:projekt")
    await a.publish([("f:projekt", {"n": 2}), ("u:anna", {"n": 3})])  # the second proves delivery ran
    await inbox_b.until(lambda i: len(i.messages) == 2)
    assert [body["n"] for _, body in inbox_b.messages] == [1, 3]


async def test_nodes_survive_a_redis_outage_and_get_their_subscriptions_back(redis_prefix: str) -> None:
    redis = RedisServer().start()  # our own: this test stops it
    try:
        a, inbox_a = await start_bus(redis.url, "node-a", redis_prefix)
        b, inbox_b = await start_bus(redis.url, "node-b", redis_prefix)
        await b.subscribe("f:projekt")
        redis.stop()
        await inbox_a.until(lambda i: i.states[-1:] == [False], timeout=10)
        await inbox_b.until(lambda i: i.states[-1:] == [False], timeout=10)
        assert not b.connected
        with pytest.raises(Exception):
            await a.publish([("f:projekt", {"lost": True})])  # nothing to publish to: the caller knows
        await b.subscribe("u:ben")  # while down: remembered for the reconnect
        redis.start()
        await inbox_a.until(lambda i: i.states[-1:] == [True], timeout=15)
        await inbox_b.until(lambda i: i.states[-1:] == [True], timeout=15)
        await a.publish([("f:projekt", {"n": 1}), ("u:ben", {"n": 2})])
        await inbox_b.until(lambda i: len(i.messages) == 2)
        assert [body["n"] for _, body in inbox_b.messages] == [1, 2]
        await a.close()
        await b.close()
    finally:
        redis.cleanup()
