"""A client's copy of one floor: a snapshot plus the diffs after it.

Pure (no I/O), so every client — the Python client, tests, load generators —
applies the sequence-number rules of docs/protocol.md the same way:

* frames that arrive before the snapshot are buffered, then replayed;
* a diff with ``seq <= view.seq`` is already contained in the view: skip it;
* ``seq == view.seq + 1``: apply it;
* ``seq > view.seq + 1``: something was missed; the view is stale until a fresh
  snapshot replaces it.
"""

from __future__ import annotations

from typing import Any

__all__ = ["FloorView"]


class FloorView:
    def __init__(self, floor_id: str) -> None:
        self.floor_id = floor_id
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
        return {uid for uid, m in self.members.items() if m.get("room_id") == room_id}

    def as_comparable(self) -> dict[str, Any]:
        """Rooms and members without ordering, for comparing two views."""
        return {"seq": self.seq, "rooms": self.rooms, "members": self.members, "floor": self.floor}
