"""The campus: cooperations, municipalities, floors and rooms.

Plain, immutable value objects. A change is a new object (``dataclasses.replace``),
so a snapshot handed to a client or a store can never be mutated behind its back.
Serialisation to the wire and to storage goes through ``to_dict``/``from_dict``,
which are the one place that knows the field names.
"""

from __future__ import annotations

import enum
from dataclasses import asdict, dataclass, field
from typing import Any, Final

from rooms.person import PersonId

__all__ = [
    "DoorState",
    "RoomKind",
    "OwnerKind",
    "Rect",
    "Cooperation",
    "Municipality",
    "Floor",
    "Room",
    "HALLWAY",
]

#: The room id a location uses for "on the floor, in no room".
HALLWAY: Final = None


class DoorState(str, enum.Enum):
    OPEN = "open"  # walk in
    CLOSED = "closed"  # knock to enter
    LOCKED = "locked"  # nobody but the owners


class RoomKind(str, enum.Enum):
    OFFICE = "office"
    MEETING = "meeting"
    PROJECT = "project"
    LOUNGE = "lounge"
    SERVICE_COUNTER = "service_counter"


class OwnerKind(str, enum.Enum):
    """Who a floor belongs to: one municipality, a cooperation (a shared floor) or a project."""

    MUNICIPALITY = "municipality"
    COOPERATION = "cooperation"
    PROJECT = "project"  # a project's own floor: only its members see it (rooms/project.py)


@dataclass(frozen=True, slots=True)
class Rect:
    """A room's place on its floor plan, in plan units (the floor's width x height)."""

    x: int
    y: int
    w: int
    h: int


@dataclass(frozen=True, slots=True)
class Municipality:
    id: str
    name: str


@dataclass(frozen=True, slots=True)
class Cooperation:
    id: str
    name: str
    members: tuple[str, ...]  # municipality ids


@dataclass(frozen=True, slots=True)
class Floor:
    id: str
    name: str
    owner_kind: OwnerKind
    owner_id: str  # municipality, cooperation or project id, by owner_kind
    width: int = 1000
    height: int = 600
    position: int = 0  # order in a building view

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["owner_kind"] = self.owner_kind.value
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Floor:
        return cls(
            id=d["id"],
            name=d["name"],
            owner_kind=OwnerKind(d["owner_kind"]),
            owner_id=d["owner_id"],
            width=int(d.get("width", 1000)),
            height=int(d.get("height", 600)),
            position=int(d.get("position", 0)),
        )


@dataclass(frozen=True, slots=True)
class Room:
    id: str
    floor_id: str
    name: str
    kind: RoomKind
    rect: Rect
    door: DoorState = DoorState.OPEN
    capacity: int = 8
    owners: tuple[PersonId, ...] = ()  # qualified: "municipality/user_id"
    expires_at: float | None = None  # unix time; project rooms may be temporary
    created_at: float = field(default=0.0, compare=False)

    def is_owner(self, person: PersonId) -> bool:
        """Is ``person`` listed as an owner? Whether they may act as one (guests may
        not) is :func:`rooms.access.is_room_owner`'s to decide."""
        return person in self.owners

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "floor_id": self.floor_id,
            "name": self.name,
            "kind": self.kind.value,
            "rect": {"x": self.rect.x, "y": self.rect.y, "w": self.rect.w, "h": self.rect.h},
            "door": self.door.value,
            "capacity": self.capacity,
            "owners": list(self.owners),
            "expires_at": self.expires_at,
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Room:
        r = d["rect"]
        return cls(
            id=d["id"],
            floor_id=d["floor_id"],
            name=d["name"],
            kind=RoomKind(d["kind"]),
            rect=Rect(int(r["x"]), int(r["y"]), int(r["w"]), int(r["h"])),
            door=DoorState(d.get("door", "open")),
            capacity=int(d.get("capacity", 8)),
            owners=tuple(PersonId(o) for o in d.get("owners", ())),
            expires_at=d.get("expires_at"),
            created_at=float(d.get("created_at", 0.0)),
        )
