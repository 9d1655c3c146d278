"""Deliver each floor's diffs in sequence order, whoever made them.

In cluster mode a node delivers its own changes at once ("local first") and
hears the other nodes' changes from Redis a moment later, so diffs can reach it
out of order. Per watched floor this keeps the next sequence number expected:

* a diff at or below what was delivered is dropped (already delivered, or
  contained in the snapshot the watch started from);
* the next expected diff is released, with any held ones that now follow it;
* an early diff is held until the ones before it arrive.

**The bus decides what is lost, not a clock.** Every change of a floor is
published on its channel inside the script that numbers it, so the channel
carries the floor's diffs in sequence order, this node's own included (their
echo, :meth:`offer` with ``echo=True``: a stand-in, delivered only if the local
copy is late while a later diff waits, so own diffs still go out batched by
the outbox). A missing diff is therefore given up
only once the bus has carried a later one: then it was published before this
node listened (or lost with a connection) and will never come. A node whose
loop is busy for a while (a loaded machine, a long collection) only delivers
later; it never declares a diff lost that is still unread on its socket - the
cause of the "one gap every four seconds" of the two-node load test. ``hold``
seconds is only the fallback for a bus that stays silent without saying so
(a hanging connection): then the gap is given up and clients resync by
snapshot instead of waiting forever.

**A new watcher never changes what the others receive.** The stream of a floor
is one per node, shared by all its watchers. While the first watchers' snapshots
are being read (:meth:`prepare` .. :meth:`start` / :meth:`abort`), everything is
collected; the stream then starts after the *oldest* of those snapshots. A watcher
joining a floor already streaming changes nothing: its snapshot is at least as new
as what was delivered (diffs are stored before anyone delivers them), and the
diffs it also receives at or below its snapshot are skipped by the client
(protocol.md §5). Only :meth:`resync` (after an outage) moves the stream forward
on purpose. ``tests/test_floor_order.py`` checks this over random interleavings.

What it orders are items of one floor: a typed :class:`FloorDiff` (this
node's own) or a :class:`DiffsText` (another node's, as it crossed the bus,
covering seq ``first`` to ``last``). Items are held and released whole, by
their first sequence number, so remote text is never parsed; the one
exception is a text that straddles what was delivered (an item can only do
that after a gap was given up), which is parsed and trimmed.

Pure: no I/O, no clock of its own; the caller passes ``now``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from presence_server.diffs import DiffsText, FloorDiff, first_seq, last_seq

__all__ = ["FloorOrder", "Item"]

#: What is ordered: one diff of this node, or a run of another node's as text.
Item = FloorDiff | DiffsText


@dataclass(slots=True)
class _Floor:
    next_seq: int | None  # None: collecting while the first snapshots are read - release nothing
    held: dict[int, Item] = field(default_factory=dict)  # first seq -> item
    held_since: float | None = None
    pending: int = 0  # snapshots being read while collecting
    base: int | None = None  # the oldest of those snapshots read so far
    bus_seq: int = 0  # the highest seq the floor's channel has carried here
    # This node's own diffs as the channel carried them (their echo): stand-ins,
    # released only if a later diff waits for them, or ``hold`` after they came;
    # normally the local copy goes out first (batched) and they are dropped.
    echoes: dict[int, Item] = field(default_factory=dict)
    echo_since: float | None = None


class FloorOrder:
    def __init__(self, *, hold: float) -> None:
        self.hold = hold
        self._floors: dict[str, _Floor] = {}
        self.gaps_lost = 0  # given up because the bus went past them
        self.gaps_timed_out = 0  # given up after ``hold`` with a silent bus

    @property
    def gaps_given_up(self) -> int:
        return self.gaps_lost + self.gaps_timed_out

    def prepare(self, floor_id: str) -> None:
        """A watcher subscribed and is about to read a snapshot; every :meth:`prepare`
        is followed by one :meth:`start` (snapshot read) or :meth:`abort` (failed)."""
        floor = self._floors.get(floor_id)
        if floor is None:
            self._floors[floor_id] = _Floor(None, pending=1)
        elif floor.next_seq is None:
            floor.pending += 1
        # Streaming already: the new watcher joins the stream as it is.

    def start(self, floor_id: str, after_seq: int, now: float = 0.0) -> list[Item]:
        """A watcher's snapshot was read at ``after_seq``; returns diffs that may go
        now (only when this ends the collecting). A floor not prepared starts at once."""
        floor = self._floors.get(floor_id)
        if floor is None:
            self._floors[floor_id] = _Floor(after_seq + 1)
            return []
        if floor.next_seq is not None:
            return []  # streaming: never moved by a watcher
        floor.base = after_seq if floor.base is None else min(floor.base, after_seq)
        floor.pending -= 1
        return self._stream_if_ready(floor, now)

    def abort(self, floor_id: str, now: float = 0.0) -> list[Item]:
        """A prepared watch failed before its snapshot was read."""
        floor = self._floors.get(floor_id)
        if floor is None or floor.next_seq is not None:
            return []
        floor.pending -= 1
        return self._stream_if_ready(floor, now)

    def resync(self, floor_id: str, seq: int, now: float = 0.0) -> list[Item]:
        """The store says the floor is at ``seq`` (after an outage): whatever is held
        at or below it is given up and the stream continues after it."""
        floor = self._floors.get(floor_id)
        if floor is None:
            return []
        if floor.next_seq is None or seq + 1 > floor.next_seq:
            floor.next_seq = seq + 1
            floor.held = {s: d for s, d in floor.held.items() if last_seq(d) > seq}
            floor.echoes = {s: d for s, d in floor.echoes.items() if last_seq(d) > seq}
            floor.held_since = None
            floor.pending, floor.base = 0, None
        return self._release(floor, now)

    def _stream_if_ready(self, floor: _Floor, now: float) -> list[Item]:
        if floor.pending > 0:
            return []
        if floor.base is None:  # every watch failed: nobody needs what was collected
            floor.held.clear()
            floor.echoes.clear()
            floor.pending = 0
            return []
        floor.next_seq, floor.base = floor.base + 1, None
        floor.held = {s: d for s, d in floor.held.items() if last_seq(d) >= floor.next_seq}
        floor.echoes = {s: d for s, d in floor.echoes.items() if last_seq(d) >= floor.next_seq}
        floor.held_since = None
        return self._release(floor, now)

    def stop(self, floor_id: str) -> None:
        self._floors.pop(floor_id, None)

    def is_ordering(self, floor_id: str) -> bool:
        return floor_id in self._floors

    def delivered(self) -> dict[str, int]:
        """Per streaming floor, the highest seq released (a floor still collecting
        has released nothing)."""
        return {f: floor.next_seq - 1 for f, floor in self._floors.items() if floor.next_seq is not None}

    def offer(self, items: Sequence[Item], now: float, *, bus: bool = False, echo: bool = False) -> list[Item]:
        """Items of one floor, in any order; returns those now deliverable, in order.
        ``bus``: another node's, as the floor's channel carried them; ``echo``: this
        node's own, as the channel carried them back. Either way everything before
        them has come over the channel too. An echo is a stand-in for the local
        copy (see ``_Floor.echoes``)."""
        if not items:
            return []
        floor = self._floors.get(items[0].floor_id)
        if floor is None:
            return []  # nobody here watches it
        if bus or echo:
            floor.bus_seq = max(floor.bus_seq, max(last_seq(item) for item in items))
        into = floor.echoes if echo else floor.held
        for item in items:
            if floor.next_seq is None or last_seq(item) >= floor.next_seq:
                into.setdefault(first_seq(item), item)
        if floor.next_seq is None:
            return []
        return self._release(floor, now)

    def due(self, now: float) -> list[Item]:
        """Give up gaps held longer than ``hold``, and release echoes whose local copy
        is that late; returns what that releases."""
        released: list[Item] = []
        for floor in self._floors.values():
            if floor.next_seq is None:
                continue
            if floor.echoes and floor.echo_since is not None and now >= floor.echo_since + self.hold:
                for first, item in floor.echoes.items():  # the local copies never came: use these
                    floor.held.setdefault(first, item)
                floor.echoes.clear()
                released.extend(self._release(floor, now))
            if floor.held and floor.held_since is not None and now >= floor.held_since + self.hold:
                self.gaps_timed_out += 1
                floor.next_seq = min(floor.held)
                released.extend(self._release(floor, now))
        return released

    def next_deadline(self) -> float | None:
        starts = [t for f in self._floors.values() for t in (f.held_since, f.echo_since) if t is not None]
        return min(starts) + self.hold if starts else None

    def _release(self, floor: _Floor, now: float) -> list[Item]:
        assert floor.next_seq is not None
        out: list[Item] = []
        _trim(floor)
        while True:
            while floor.next_seq in floor.held:
                item = floor.held.pop(floor.next_seq)
                out.append(item)
                floor.next_seq = last_seq(item) + 1
                _trim(floor)
            if not floor.held:
                break
            if floor.next_seq in floor.echoes:  # ours, its local copy late, and a later diff waits
                floor.held[floor.next_seq] = floor.echoes.pop(floor.next_seq)
                continue
            if floor.bus_seq < floor.next_seq:
                break
            # The channel carried something past next_seq without it: lost for good.
            self.gaps_lost += 1
            floor.next_seq = min(floor.held)
        floor.held_since = (floor.held_since or now) if floor.held else None
        floor.echo_since = (floor.echo_since or now) if floor.echoes else None
        return out


def _trim(floor: _Floor) -> None:
    """Drop held items and echoes wholly delivered; split a text that straddles
    ``next_seq`` into its diffs and keep those still to come."""
    assert floor.next_seq is not None
    for items in (floor.held, floor.echoes):
        for first in [s for s in items if s < floor.next_seq]:
            item = items.pop(first)
            if last_seq(item) >= floor.next_seq and isinstance(item, DiffsText):
                for diff in item.parse():
                    if diff.seq >= floor.next_seq:
                        items.setdefault(diff.seq, diff)
