"""Per-floor ordering of diffs that arrive from this node and from others."""

from __future__ import annotations

import json
import random
from typing import Any

import pytest

from presence_server.cluster.ordering import FloorOrder, Item
from presence_server.diffs import DiffsText, FloorDiff, first_seq, last_seq


def d(seq: int, floor: str = "f") -> FloorDiff:
    return FloorDiff(floor, seq, "moved", {"person": "m/u", "from": None, "room_id": None})


def seqs(items: list[Item]) -> list[int]:
    """Every sequence number the items cover, in order."""
    return [s for x in items for s in range(first_seq(x), last_seq(x) + 1)]


def test_in_order_diffs_pass_straight_through() -> None:
    order = FloorOrder(hold=0.2)
    order.start("f", after_seq=10)
    assert seqs(order.offer([d(11), d(12)], now=0)) == [11, 12]


def test_an_early_diff_waits_for_the_one_before_it() -> None:
    order = FloorOrder(hold=0.2)
    order.start("f", after_seq=10)
    assert order.offer([d(12)], now=0) == []  # our own change, ahead of another node's 11
    assert seqs(order.offer([d(11)], now=0.01)) == [11, 12]
    assert order.next_deadline() is None


def test_old_and_duplicate_diffs_are_dropped() -> None:
    order = FloorOrder(hold=0.2)
    order.start("f", after_seq=10)
    assert order.offer([d(9), d(10)], now=0) == []  # inside the snapshot
    assert seqs(order.offer([d(11)], now=0)) == [11]
    assert order.offer([d(11)], now=0) == []


def test_a_gap_that_does_not_fill_is_given_up_after_the_hold() -> None:
    order = FloorOrder(hold=0.2)
    order.start("f", after_seq=10)
    order.offer([d(13), d(12)], now=1.0)
    assert order.next_deadline() == 1.2
    assert order.due(now=1.1) == []
    assert seqs(order.due(now=1.2)) == [12, 13]  # 11 never came: clients will resync
    assert order.gaps_given_up == 1
    assert seqs(order.offer([d(14)], now=1.3)) == [14]


def test_floors_are_independent_and_unwatched_floors_are_ignored() -> None:
    order = FloorOrder(hold=0.2)
    order.start("a", after_seq=0)
    order.start("b", after_seq=5)
    assert order.offer([d(2, "a")], now=0) == []
    assert seqs(order.offer([d(6, "b")], now=0)) == [6]
    assert order.offer([d(1, "elsewhere")], now=0) == []


def test_a_resync_after_an_outage_moves_the_stream_forward() -> None:
    order = FloorOrder(hold=0.2)
    order.start("f", after_seq=10)
    order.offer([d(13)], now=0)
    assert seqs(order.resync("f", seq=12)) == [13]  # the store is at 12: 11 and 12 are given up
    assert seqs(order.offer([d(14)], now=0)) == [14]


def test_a_new_watchers_snapshot_does_not_move_the_stream() -> None:
    """The cause of the cluster's sequence gaps: a snapshot read while diff 11 was
    still on the bus moved the stream past it, and every watcher missed 11."""
    order = FloorOrder(hold=0.2)
    order.start("f", after_seq=10)
    order.offer([d(12)], now=0)  # our own change; another node's 11 is on its way
    order.prepare("f")
    assert order.start("f", after_seq=12) == []  # the newcomer's snapshot already has 11 and 12
    assert seqs(order.offer([d(11)], now=0.01)) == [11, 12]  # the others still get both


def test_the_stream_starts_after_the_oldest_of_the_first_snapshots() -> None:
    order = FloorOrder(hold=0.2)
    order.prepare("f")
    order.prepare("f")
    order.offer([d(6), d(7), d(8)], now=0)
    assert order.start("f", after_seq=7) == []  # the second snapshot is still being read
    assert seqs(order.start("f", after_seq=5)) == [6, 7, 8]  # its view needs 6 and 7


def test_a_failed_watch_neither_blocks_the_stream_nor_keeps_what_nobody_needs() -> None:
    order = FloorOrder(hold=0.2)
    order.prepare("f")
    order.prepare("f")
    order.offer([d(4), d(5)], now=0)
    assert order.abort("f") == []
    assert seqs(order.start("f", after_seq=4)) == [5]
    lonely = FloorOrder(hold=0.2)
    lonely.prepare("g")
    lonely.offer([d(1, "g")], now=0)
    assert lonely.abort("g") == [] and lonely.due(now=10) == []
    lonely.prepare("g")
    assert lonely.start("g", after_seq=3) == []
    assert seqs(lonely.offer([d(4, "g")], now=0)) == [4]


@pytest.mark.parametrize("seed", range(200))
def test_no_watcher_ever_misses_a_diff_whatever_the_interleaving(seed: int) -> None:
    """A node's view of one floor, simulated: diffs are stored in sequence and reach
    the node out of order (local first, other nodes' later, within the hold);
    watchers subscribe, read their snapshot a little later (at the store's seq then)
    and sometimes fail. Every watcher that started must receive every diff after
    its snapshot, in order, none missing: new watchers never cost the others one."""
    rng = random.Random(seed)
    order = FloorOrder(hold=10.0)  # no gap is ever given up: none is lost here
    stored = 0  # the store's seq
    in_flight: list[int] = []  # stored, not yet heard by this node
    watchers: list[dict[str, Any]] = []  # {"snapshot": seq | None, "got": [...], "alive": bool}
    reading: list[dict[str, Any]] = []  # subscribed, snapshot not yet read

    def deliver(diffs: list[FloorDiff]) -> None:
        for w in watchers:
            if w["alive"]:
                w["got"].extend(x.seq for x in diffs)

    for step in range(rng.randint(20, 80)):
        action = rng.random()
        if action < 0.35:  # a change is stored (and published)
            stored += 1
            in_flight.append(stored)
        elif action < 0.65 and in_flight:  # the node hears one of them (any order)
            seq = in_flight.pop(rng.randrange(len(in_flight)))
            deliver(order.offer([d(seq)], now=step * 0.001))
        elif action < 0.8:  # a session subscribes (its snapshot comes later)
            w = {"snapshot": None, "got": [], "alive": True}
            order.prepare("f")
            watchers.append(w)
            reading.append(w)
        elif reading:  # a pending snapshot is read now, or fails
            w = reading.pop(rng.randrange(len(reading)))
            if rng.random() < 0.15:
                w["alive"] = False
                watchers.remove(w)
                deliver(order.abort("f", now=step * 0.001))
            else:
                w["snapshot"] = stored
                deliver(order.start("f", after_seq=stored, now=step * 0.001))
    for w in reading:
        w["snapshot"] = stored
        deliver(order.start("f", after_seq=stored))
    rng.shuffle(in_flight)
    for seq in in_flight:
        deliver(order.offer([d(seq)], now=1.0))
    for w in watchers:
        after = [s for s in w["got"] if s > w["snapshot"]]
        assert after == list(range(w["snapshot"] + 1, stored + 1)), (seed, w)
    assert order.gaps_given_up == 0


def test_diffs_between_subscribing_and_the_snapshot_are_kept_until_it_is_read() -> None:
    order = FloorOrder(hold=0.2)
    order.prepare("f")
    assert order.offer([d(7), d(9), d(8)], now=0) == []  # subscribed; snapshot still being read
    assert order.due(now=5) == []  # nothing is given up before the start is known
    assert seqs(order.start("f", after_seq=7, now=0.1)) == [8, 9]  # 7 was in the snapshot
    assert seqs(order.offer([d(10)], now=0.2)) == [10]


def text(first: int, last: int, floor: str = "f") -> DiffsText:
    """Another node's diffs first..last, as the floor script published them."""
    wires = [{"seq": s, "type": "moved", "person": "seefeld/u", "from": None, "room_id": "r"} for s in range(first, last + 1)]
    return DiffsText(floor, first, last, json.dumps(wires))


def test_another_nodes_text_is_ordered_whole_and_passed_on_as_it_came() -> None:
    order = FloorOrder(hold=0.2)
    order.start("f", after_seq=10)
    remote = text(12, 14)
    assert order.offer([remote], now=0) == []  # waits for 11 (ours, on its way)
    released = order.offer([d(11)], now=0.01)
    assert released[0] == d(11) and released[1] is remote  # the very text, not a re-encoding
    assert seqs(order.offer([d(15)], now=0.02)) == [15]
    assert order.offer([text(13, 14)], now=0.03) == []  # delivered already


def test_a_text_that_straddles_a_given_up_gap_is_trimmed_to_what_is_new() -> None:
    order = FloorOrder(hold=0.2)
    order.start("f", after_seq=10)
    order.offer([d(13)], now=1.0)
    assert seqs(order.due(now=1.3)) == [13]  # 11 and 12 given up
    late = order.offer([text(12, 14)], now=1.4)  # a run that began inside the gap
    assert seqs(late) == [14] and isinstance(late[0], FloorDiff)


def test_a_diff_the_floors_channel_went_past_is_given_up_at_once() -> None:
    order = FloorOrder(hold=2.0)
    order.start("f", after_seq=10)
    assert seqs(order.offer([text(12, 13)], now=0, bus=True)) == [12, 13]  # 11 came before them, or never
    assert order.gaps_lost == 1 and order.gaps_timed_out == 0
    assert order.next_deadline() is None


def test_an_own_diff_ahead_of_the_bus_waits_while_the_node_is_busy_reading_it() -> None:
    """The two-node load test's gaps: our own 12 is delivered first (local first),
    another node's 11 is still unread on the bus socket while the loop is busy. The
    wait is bounded only by the hold for a silent bus, not by a reorder guess."""
    order = FloorOrder(hold=2.0)
    order.start("f", after_seq=10)
    assert order.offer([d(12)], now=0) == []
    assert order.due(now=1.5) == []  # a loop 1.5 s late: still nothing given up
    assert order.offer([text(10, 10)], now=1.5, bus=True) == []  # the bus catching up, old news first
    assert seqs(order.offer([text(11, 11)], now=1.6, bus=True)) == [11, 12]
    assert order.offer([text(12, 12)], now=1.6, echo=True) == []  # our own echo: delivered already
    assert order.gaps_given_up == 0


def test_an_own_diff_whose_echo_comes_first_still_goes_out_as_the_local_copy() -> None:
    """The echo often beats the outbox's batch window; the local copy (batched, typed)
    is what goes out, and the echo only marks how far the channel has come."""
    order = FloorOrder(hold=2.0)
    order.start("f", after_seq=10)
    assert order.offer([text(11, 12)], now=0, echo=True) == []
    local = [d(11), d(12)]
    assert order.offer(local, now=0.005) == local
    assert order.next_deadline() is None  # the echo is gone with it
    assert seqs(order.offer([d(13)], now=0.02)) == [13]


def test_an_echo_stands_in_for_a_late_local_copy_when_a_later_diff_waits() -> None:
    order = FloorOrder(hold=2.0)
    order.start("f", after_seq=10)
    assert order.offer([text(11, 11)], now=0, echo=True) == []  # ours, the local copy on its way
    released = order.offer([text(12, 13)], now=0.01, bus=True)  # another node's, right after it
    assert seqs(released) == [11, 12, 13] and order.gaps_given_up == 0
    assert order.offer([d(11)], now=0.02) == []  # the late local copy: dropped as delivered


def test_an_echo_whose_local_copy_never_comes_goes_out_after_the_hold() -> None:
    order = FloorOrder(hold=2.0)
    order.start("f", after_seq=10)
    assert order.offer([text(11, 11)], now=0, echo=True) == []
    assert order.next_deadline() == 2.0
    assert order.due(now=1.9) == []
    assert seqs(order.due(now=2.0)) == [11]
    assert order.gaps_given_up == 0


def test_a_silent_bus_gives_a_gap_up_after_the_hold() -> None:
    order = FloorOrder(hold=2.0)
    order.start("f", after_seq=10)
    order.offer([d(12)], now=0)  # the channel carries nothing, 11 never comes
    assert order.due(now=1.9) == []
    assert seqs(order.due(now=2.0)) == [12]
    assert order.gaps_timed_out == 1 and order.gaps_lost == 0


@pytest.mark.parametrize("seed", range(200))
def test_a_node_hearing_the_bus_late_never_gives_up_a_diff(seed: int) -> None:
    """Two paths into one node: its own changes, at once (local first, any delay),
    and the floor's channel, in sequence order, complete from the moment the node
    subscribed (its own changes as echoes). The channel is read arbitrarily late.
    Watchers come and read snapshots meanwhile. Nothing is lost here, so nothing
    may be given up, and every watcher gets every diff after its snapshot once."""
    rng = random.Random(seed)
    order = FloorOrder(hold=1e9)  # only the channel may declare a diff lost
    stored = 0
    subscribed = False
    channel: list[tuple[int, bool]] = []  # (seq, ours) published while subscribed, unread, in order
    local: list[int] = []  # own changes on their way through the outbox
    watchers: list[dict[str, Any]] = []
    reading: list[dict[str, Any]] = []

    def deliver(items: list[Item]) -> None:
        for w in watchers:
            if w["snapshot"] is not None:
                w["got"].extend(seqs(items))

    for step in range(rng.randint(30, 120)):
        action = rng.random()
        if action < 0.35:  # a change is stored and published: ours or another node's
            stored += 1
            ours = rng.random() < 0.5
            if subscribed:
                channel.append((stored, ours))
            if ours:
                local.append(stored)
        elif action < 0.55 and channel:  # the bus reader gets to the next message
            seq, ours = channel.pop(0)
            deliver(order.offer([text(seq, seq)], now=step, bus=not ours, echo=ours))
        elif action < 0.75 and local:  # the outbox delivers one of ours
            seq = local.pop(rng.randrange(len(local)))
            deliver(order.offer([d(seq)], now=step))
        elif action < 0.85:  # a session watches: subscribe, snapshot later
            subscribed = True
            w: dict[str, Any] = {"snapshot": None, "got": []}
            order.prepare("f")
            watchers.append(w)
            reading.append(w)
        elif reading:
            w = reading.pop(rng.randrange(len(reading)))
            w["snapshot"] = stored
            deliver(order.start("f", after_seq=stored, now=step))
        deliver(order.due(now=step))
    for w in reading:
        w["snapshot"] = stored
        deliver(order.start("f", after_seq=stored))
    rng.shuffle(local)
    for seq, ours in channel:
        deliver(order.offer([text(seq, seq)], now=1e6, bus=not ours, echo=ours))
    for seq in local:
        deliver(order.offer([d(seq)], now=1e6))
    for w in watchers:
        after = [s for s in w["got"] if s > w["snapshot"]]
        assert after == list(range(w["snapshot"] + 1, stored + 1)), (seed, w)
    assert order.gaps_given_up == 0
