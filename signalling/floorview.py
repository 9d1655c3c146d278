"""A client's copy of one floor: a snapshot plus the diffs after it.

Pure (no I/O), so every client — the Python client, tests, load generators —
applies the sequence-number rules of docs/protocol.md the same way:

* frames that arrive before the snapshot are buffered, then replayed;
* a diff with ``seq <= view.seq`` is already contained in the view: skip it;
* ``seq == view.seq + 1``: apply it;
* ``seq > view.seq + 1``: something was missed; the view is stale until a fresh
  snapshot replaces it.

Members are keyed by person id (``municipality/user_id``) and kept as the wire's
Member dicts; :meth:`FloorView.member` gives one typed. ``on_apply``, if given, is
called with each diff right after it changed the view — exactly once per diff, in
``seq`` order, including the early diffs replayed after a snapshot — and never for
diffs skipped as already contained or lost in a gap.
"""

from __future__ import annotations

from typing import Any, Callable

from signalling.wire import Member, Person

__all__ = ["FloorView", "OnApply"]

#: ``on_apply(floor_id, diff)``: told of each diff the view applied (module docstring).
OnApply = Callable[[str, dict[str, Any]], None]


class FloorView:
    def __init__(self, floor_id: str, *, on_apply: OnApply | None = None) -> None:
        self.floor_id = floor_id
        self.on_apply = on_apply
        self.seq = 0
        self.floor: dict[str, Any] = {}
        self.rooms: dict[str, dict[str, Any]] = {}
        self.members: dict[str, dict[str, Any]] = {}
        self.stale = True  # until the first snapshot
        self.removed = False
        self.gaps = 0
        self._early: list[dict[str, Any]] = []

    def load_snapshot(self, snapshot: dict[str, Any]) -> bool:
        """Take a snapshot, then replay frames that came early. False when the
        replay found a gap: the view is stale again and needs another snapshot."""
        self.floor = dict(snapshot["floor"])
        self.rooms = {r["id"]: dict(r) for r in snapshot["rooms"]}
        self.members = {m["person"]: dict(m) for m in snapshot["members"]}
        self.seq = int(snapshot["seq"])
        self.stale = False
        early, self._early = self._early, []
        return all(self.apply(diff) for diff in early)

    def apply_frame(self, frame: dict[str, Any]) -> bool:
        """Apply a ``floor.diffs`` frame. False when a gap was found (resync needed)."""
        for diff in frame["diffs"]:
            if not self.apply(diff):
                return False
        return True

    def apply(self, diff: dict[str, Any]) -> bool:
        if self.stale:
            self._early.append(diff)
            return True
        seq = int(diff["seq"])
        if seq <= self.seq:
            return True
        if seq != self.seq + 1:
            self.stale = True
            self.gaps += 1
            self._early.clear()
            return False
        self.seq = seq
        self._apply(diff)
        if self.on_apply is not None:
            self.on_apply(self.floor_id, diff)
        return True

    def _apply(self, diff: dict[str, Any]) -> None:
        kind = diff["type"]
        if kind == "joined":
            member = diff["member"]
            self.members[member["person"]] = dict(member)
        elif kind == "left":
            self.members.pop(diff["person"], None)
        elif kind == "moved":
            if diff["person"] in self.members:
                self.members[diff["person"]]["room_id"] = diff["room_id"]
        elif kind == "status":
            if diff["person"] in self.members:
                self.members[diff["person"]].update(status=diff["status"], text=diff["text"])
        elif kind == "room":
            room = diff["room"]
            self.rooms[room["id"]] = dict(room)
        elif kind == "room_removed":
            self.rooms.pop(diff["room_id"], None)
        elif kind == "floor":
            self.floor = dict(diff["floor"])
        elif kind == "floor_removed":
            self.removed = True
        elif kind == "call":
            member = self.members.get(diff["person"])
            if member is not None:
                if diff["in_call"] is None:
                    member.pop("in_call", None)  # absent means "not in a call", as in snapshots
                else:
                    member["in_call"] = diff["in_call"]
        # Unknown kinds are ignored: newer servers may add diff types.

    def occupants(self, room_id: str | None) -> set[str]:
        """Person ids of everyone in ``room_id`` (None: the hallway)."""
        return {person for person, m in self.members.items() if m.get("room_id") == room_id}

    def member(self, person: str) -> Member | None:
        """The member ``person`` (a person id) as a typed :class:`Member`, if on the floor."""
        data = self.members.get(Person(person))
        return None if data is None else Member.from_wire(data)

    def as_comparable(self) -> dict[str, Any]:
        """Rooms and members without ordering, for comparing two views."""
        return {"seq": self.seq, "rooms": self.rooms, "members": self.members, "floor": self.floor}
