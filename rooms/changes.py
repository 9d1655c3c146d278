"""What the campus service tells its listeners: one :class:`CampusChange` per change.

Kept apart from the service so transports (the presence gateway, the cluster
bus) can depend on the message without depending on the service.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal, Protocol

from rooms.model import Floor, Room
from rooms.project import Project

__all__ = ["ChangeKind", "CampusChange", "CampusListener"]

ChangeKind = Literal[
    "floor_upserted", "floor_deleted", "room_upserted", "room_deleted", "project_upserted", "project_deleted"
]


@dataclass(frozen=True, slots=True)
class CampusChange:
    """One change to the campus, as told to listeners (and, later, to other nodes).

    ``floor`` is set for ``floor_upserted`` and, by the service, for
    ``floor_deleted`` (the removed floor: a listener needs its owner to know whom
    to tell, and can no longer look it up). ``room`` is set for ``room_upserted``
    and ``room_deleted`` (the removed room). ``project`` is set for
    ``project_upserted`` and ``project_deleted``; their ``floor_id`` is the
    project's floor ('' if it has none). The constructor refuses a change
    that lacks what its kind needs.
    """

    kind: ChangeKind
    floor_id: str
    floor: Floor | None = None
    room: Room | None = None
    project: Project | None = None
    #: Made on another node and only heard of here: listeners update what this
    #: node holds, but must not announce it again (the other node did).
    remote: bool = False

    def __post_init__(self) -> None:
        # Fail where a malformed change is made, not later in some listener.
        if self.kind in ("floor_upserted", "floor_deleted"):
            if self.floor is None and self.kind == "floor_upserted":
                raise ValueError("floor_upserted needs the floor")
            if self.floor is not None and self.floor.id != self.floor_id:
                raise ValueError("floor.id does not match floor_id")
        elif self.kind in ("room_upserted", "room_deleted"):
            if self.room is None or self.room.floor_id != self.floor_id:
                raise ValueError(f"{self.kind} needs a room on floor {self.floor_id!r}")
        elif self.kind in ("project_upserted", "project_deleted"):
            if self.project is None:
                raise ValueError(f"{self.kind} needs the project")
        else:
            raise ValueError(f"unknown change kind {self.kind!r}")

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready; keeps ``created_at``, which the client-facing ``Room.to_dict`` omits."""
        room = None if self.room is None else {**self.room.to_dict(), "created_at": self.room.created_at}
        floor = None if self.floor is None else self.floor.to_dict()
        project = None if self.project is None else self.project.to_dict()
        return {"kind": self.kind, "floor_id": self.floor_id, "floor": floor, "room": room, "project": project}

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> CampusChange:
        floor = None if d.get("floor") is None else Floor.from_dict(d["floor"])
        room = None if d.get("room") is None else Room.from_dict(d["room"])
        project = None if d.get("project") is None else Project.from_dict(d["project"])
        return cls(kind=d["kind"], floor_id=d["floor_id"], floor=floor, room=room, project=project)


class CampusListener(Protocol):
    async def campus_changed(self, change: CampusChange) -> None:
        """Called after the change is stored and visible in the service's memory.

        Called under the service's write lock, so strictly in order: do not call
        the service's write methods from here (reads are fine), and be quick.
        Exceptions are logged; they neither undo the change nor stop other listeners.
        """
