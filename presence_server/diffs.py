"""Floor diffs: what changed on a floor, in the floor's sequence, and their wire form.

A leaf module (it imports nothing of the project), so the presence state, the
stores, the outbox, the transports and the cluster ordering share one type
without importing each other.

One change comes in two forms:

* :class:`FloorDiff` — typed: what the presence state and stores return, what
  the outbox batches and observers (webhooks) read;
* :class:`DiffsText` — consecutive diffs of one floor as the JSON text a floor
  script in Redis published on the bus. A node forwards that text to its
  sockets as it came; parsing and re-encoding every remote change on every
  node would be the cluster's hottest path.

The wire form of a diff (docs/protocol.md §5) is ``{"seq", "type", **data}``;
a ``floor.diffs`` frame carries ``{"floor_id", "diffs": [...]}``.
:func:`floor_diffs_json` builds that payload as text once per frame, typed
diffs serialised and bus text spliced in unchanged; :func:`floor_diffs_payload`
builds it as an object for the few sockets python-socketio serves itself.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Final, TypeAlias

__all__ = [
    "FLOOR_DIFFS_EVENT",
    "FloorDiff",
    "DiffsText",
    "Diffs",
    "first_seq",
    "last_seq",
    "floor_diffs_json",
    "floor_diffs_payload",
]

#: The event that carries a floor's diffs to its watchers.
FLOOR_DIFFS_EVENT: Final = "floor.diffs"


def _dumps(value: Any) -> str:
    # python-socketio's own separators: a frame encoded here equals one it would encode.
    return json.dumps(value, separators=(",", ":"))


@dataclass(frozen=True, slots=True)
class FloorDiff:
    """One change on one floor. ``data`` is the wire payload besides seq and type."""

    floor_id: str
    seq: int
    type: str  # joined | left | moved | status | call | room | room_removed | floor | floor_removed
    data: dict[str, Any]

    def to_wire(self) -> dict[str, Any]:
        return {"seq": self.seq, "type": self.type, **self.data}

    @classmethod
    def from_wire(cls, floor_id: str, wire: Mapping[str, Any]) -> FloorDiff:
        data = {k: v for k, v in wire.items() if k not in ("seq", "type")}
        return cls(floor_id, int(wire["seq"]), str(wire["type"]), data)


@dataclass(frozen=True, slots=True)
class DiffsText:
    """The diffs ``first`` to ``last`` of one floor (consecutive: one script stamped
    them) as a JSON array of wire diffs, exactly as they crossed the bus."""

    floor_id: str
    first: int
    last: int
    text: str

    def parse(self) -> list[FloorDiff]:
        """The typed diffs (for the rare paths that need them: a gap trimmed, polling)."""
        return [FloorDiff.from_wire(self.floor_id, wire) for wire in json.loads(self.text)]

    @property
    def removes_floor(self) -> bool:
        """Whether a ``floor_removed`` is among them. A substring test is exact here:
        every key is the server's, and inside JSON strings quotes are escaped, so
        ``"type":"floor_removed"`` can only be a diff's own type."""
        return '"type":"floor_removed"' in self.text


#: What a transport delivers for a floor, in sequence order.
Diffs: TypeAlias = Sequence[FloorDiff | DiffsText]


def first_seq(item: FloorDiff | DiffsText) -> int:
    return item.seq if isinstance(item, FloorDiff) else item.first


def last_seq(item: FloorDiff | DiffsText) -> int:
    return item.seq if isinstance(item, FloorDiff) else item.last


def floor_diffs_json(floor_id: str, diffs: Diffs) -> str:
    """The ``floor.diffs`` payload as JSON text: each typed diff serialised once,
    each bus text spliced in as it came."""
    parts: list[str] = []
    for item in diffs:
        if isinstance(item, FloorDiff):
            parts.append(_dumps(item.to_wire()))
        elif len(item.text) > 2:  # "[...]": its elements, without the brackets
            parts.append(item.text[1:-1])
    return '{"floor_id":' + _dumps(floor_id) + ',"diffs":[' + ",".join(parts) + "]}"


def floor_diffs_payload(floor_id: str, diffs: Diffs) -> dict[str, Any]:
    """The same payload as an object (python-socketio's long-polling path)."""
    wire: list[dict[str, Any]] = []
    for item in diffs:
        wire.extend([item.to_wire()] if isinstance(item, FloorDiff) else json.loads(item.text))
    return {"floor_id": floor_id, "diffs": wire}
