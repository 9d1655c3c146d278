"""A node's floor subscription survives a watcher leaving as another arrives.

The unsubscribe after a floor's last local watcher leaves runs later than the
leave. A watcher arriving in between finds the channel still subscribed; the
late unsubscribe must then not go through, or that node hears none of the
floor's changes from other nodes (every one a sequence gap). Two in-process
nodes over a real Redis; the leave and the arrival are sent together, twenty
times, and a change made on the other node must reach the new watcher each time.
"""

from __future__ import annotations

import asyncio

from signalling.client import OfficeClient
from tests.conftest import OfficeServer, StartServer
from tests.support.redis_server import RedisServer

FLOOR = "projekt"


async def test_a_watcher_arriving_as_the_last_one_leaves_keeps_hearing_other_nodes(
    start_server: StartServer, redis_server: RedisServer, redis_prefix: str
) -> None:
    env = {"PRESENCE_REDIS__URL": redis_server.url, "PRESENCE_REDIS__PREFIX": redis_prefix,
           "PRESENCE_LIMITS__EVENTS_PER_SECOND": "1000", "PRESENCE_LIMITS__BURST": "1000"}
    a: OfficeServer = await start_server(env)
    b: OfficeServer = await start_server(env)
    leaving = await a.client("mia.altbach", "altbach")
    arriving = await a.client("jan.altbach", "altbach")
    mover = await b.client("tim.bergheim", "bergheim")
    await leaving.watch(FLOOR)
    await mover.move(FLOOR)
    for round_no in range(20):
        await asyncio.gather(leaving.request("floor.unwatch", {"floor_id": FLOOR}),
                             arriving.watch(FLOOR))
        text = f"Runde {round_no}"
        await mover.set_status("busy", text)  # made on node b: node a hears it only through Redis
        await arriving.until_view(FLOOR, lambda v, t=text: v.members.get("bergheim/tim.bergheim", {}).get("text") == t,
                                  timeout=5)
        leaving, arriving = arriving, leaving  # the other one leaves next


async def test_new_watchers_cost_the_watchers_already_there_no_diff(
    start_server: StartServer, redis_server: RedisServer, redis_prefix: str
) -> None:
    """Issue 13's first fault: with changes flowing from both nodes and a new
    session watching the floor every moment, the watchers already there on node a
    saw one sequence gap per new watch. Now they see none: no resync, and every
    status text of the movers arrives."""
    env = {"PRESENCE_REDIS__URL": redis_server.url, "PRESENCE_REDIS__PREFIX": redis_prefix,
           "PRESENCE_LIMITS__EVENTS_PER_SECOND": "1000", "PRESENCE_LIMITS__BURST": "1000"}
    a: OfficeServer = await start_server(env)
    b: OfficeServer = await start_server(env)
    watchers = [await a.client(f"w{i}.altbach", "altbach") for i in range(5)]
    for w in watchers:
        await w.watch(FLOOR)
    movers = [await a.client("mia.altbach", "altbach"), await b.client("tim.bergheim", "bergheim")]
    for m in movers:
        await m.move(FLOOR)

    async def keep_changing(mover: OfficeClient, rounds: int) -> None:
        for n in range(rounds):
            await mover.set_status("busy", f"Runde {n}")

    async def keep_arriving(count: int) -> None:
        for i in range(count):
            newcomer = await a.client(f"neu{i}.altbach", "altbach")
            await newcomer.watch(FLOOR)

    await asyncio.gather(*(keep_changing(m, 60) for m in movers), keep_arriving(15))
    for w in watchers:
        await w.until_view(FLOOR, lambda v: all(v.members.get(m.person, {}).get("text") == "Runde 59" for m in movers),
                           timeout=10)
    assert [w.resyncs for w in watchers] == [0] * len(watchers)


async def test_a_resync_refused_for_want_of_the_store_is_retried_when_the_server_says(
    start_server: StartServer, redis_server: RedisServer, redis_prefix: str
) -> None:
    """Issue 13: views stayed stale for good when the snapshot of their resync was
    answered unavailable. The server now owes such a floor a floor.seq, and the
    client resyncs a stale view on it."""
    from redis.exceptions import ConnectionError as RedisConnectionError

    env = {"PRESENCE_REDIS__URL": redis_server.url, "PRESENCE_REDIS__PREFIX": redis_prefix}
    a: OfficeServer = await start_server(env)
    watcher = await a.client("mia.altbach", "altbach")
    mover = await a.client("tim.bergheim", "bergheim")
    view = await watcher.watch(FLOOR)
    store = a.runtime.presence.store
    snapshot = store.snapshot
    refused: list[str] = []

    async def once_away(floor_id: str):  # type: ignore[no-untyped-def]
        if not refused:
            refused.append(floor_id)
            raise RedisConnectionError("Connection closed by server.")
        return await snapshot(floor_id)

    store.snapshot = once_away  # type: ignore[method-assign]
    watcher.drop_next_frame = True  # the move's frame is lost: the next one shows a gap
    watcher.pending_events("floor.diffs")
    await mover.move(FLOOR)
    await watcher.next_event("floor.diffs", timeout=5)  # arrived, and dropped
    await mover.set_status("busy", "da")
    await watcher.next_event("floor.seq", timeout=10)  # owed after the refused resync
    await watcher.until_view(FLOOR, lambda v: v.members.get(mover.person, {}).get("text") == "da", timeout=10)
    assert refused == [FLOOR] and not view.stale
