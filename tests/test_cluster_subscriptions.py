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
