"""A node's ClusterTransport counts and logs the floor diffs it gives up
(``vo_cluster_gaps_given_up_total{reason}``), and gives up none that its own
echo or the channel still carry."""

from __future__ import annotations

from presence_server.cluster.transport import GAPS, ClusterTransport
from presence_server.diffs import first_seq, last_seq
from tests.test_supervised_loops import StubBus, StubLocal, moved, until


def given_up(reason: str) -> float:
    return GAPS.labels(reason)._value.get()


def text(first: int, last: int) -> dict[str, object]:
    wires = ",".join(f'{{"seq":{s},"type":"left","person":"bergheim/u{s}"}}' for s in range(first, last + 1))
    return {"floor_id": "f", "first": first, "last": last, "diffs_json": f"[{wires}]"}


async def test_a_diff_the_channel_went_past_is_counted_as_lost_and_a_silent_bus_after_the_hold() -> None:
    local = StubLocal()
    transport = ClusterTransport(local, StubBus(), reorder_hold=0.2)  # type: ignore[arg-type]
    transport.start()
    try:
        def delivered() -> list[int]:
            return [s for _, items in local.diffs for d in items for s in range(first_seq(d), last_seq(d) + 1)]

        await transport.watch("sid-1", "f")
        transport.watch_started("f", 0)
        lost, silent = given_up("lost"), given_up("bus_silent")
        transport.on_bus_echo("f:f", text(1, 1))  # ours: the local copy is on its way
        transport.on_bus_message("f:f", text(2, 2))  # another node's: 1 fills in from the echo
        await until(lambda: delivered() == [1, 2])
        assert (given_up("lost"), given_up("bus_silent")) == (lost, silent)
        transport.on_bus_message("f:f", text(4, 4))  # 3 was never carried: lost, at once
        await until(lambda: delivered() == [1, 2, 4])
        assert given_up("lost") == lost + 1
        await transport.send_diffs("f", [moved(6)])  # ours; 5 not carried yet by the channel
        await until(lambda: given_up("bus_silent") == silent + 1, timeout=5)  # after the hold
        await until(lambda: delivered() == [1, 2, 4, 6])
    finally:
        await transport.close()
