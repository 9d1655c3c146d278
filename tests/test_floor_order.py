"""Per-floor ordering of diffs that arrive from this node and from others."""

from __future__ import annotations

import json

from presence_server.cluster.ordering import FloorOrder, Item
from presence_server.diffs import DiffsText, FloorDiff, first_seq, last_seq


def d(seq: int, floor: str = "f") -> FloorDiff:
    return FloorDiff(floor, seq, "moved", {"user_id": "u", "from": None, "room_id": None})


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


def test_a_newer_snapshot_moves_the_start_forward() -> None:
    order = FloorOrder(hold=0.2)
    order.start("f", after_seq=10)
    order.offer([d(13)], now=0)
    assert seqs(order.start("f", after_seq=12)) == [13]  # a resync read seq 12: 13 may go
    assert seqs(order.offer([d(14)], now=0)) == [14]


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
