"""Projects: spaces with their own members, across municipalities and cooperations.

A project is how towns actually cooperate: three of four digitise a procedure,
one lends a specialist to a neighbour, a consultancy joins for six months. It has

* **members**: named persons (``municipality/user_id``) and/or whole
  municipalities, from any cooperation on the platform;
* **coordinators**: persons who manage members, rooms, doors and invitations
  (a coordinator is a member);
* **one floor of its own** (``Floor.owner_kind == "project"``, ``owner_id`` the
  project id) holding its rooms, which only members see;
* an optional **end date**: its rooms carry it as ``expires_at`` and close then
  (the campus's room expiry removes them); the project record stays, so the
  audit trail can name it.

Why a floor of its own rather than rooms on a shared floor: every floor goes
out to its watchers as one frame, serialised once. A room visible to only some
of a floor's watchers would need a frame per watcher and would leak its
occupants through the floor's member list. A project floor keeps the fan-out
and the visibility rule ("you see a floor or you do not") as they are.

Pure values and rules; the campus service stores and changes them.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from typing import Any, Final

from rooms.model import DoorState, Rect, RoomKind
from rooms.person import PersonId

__all__ = [
    "Project",
    "ProjectPolicy",
    "RoomTemplate",
    "TemplateRoom",
    "TEMPLATES",
    "MAX_PROJECT_MEMBERS",
]

#: Named persons plus municipalities per project: a project is a team, not a mailing list.
MAX_PROJECT_MEMBERS: Final = 200


class RoomTemplate(str, enum.Enum):
    """The rooms a new project floor starts with."""

    MEETING = "meeting"  # one meeting room
    PROJECT_OFFICE = "project_office"  # a project office and a meeting room
    LOUNGE = "lounge"  # a lounge


@dataclass(frozen=True, slots=True)
class TemplateRoom:
    name: str
    kind: RoomKind
    rect: Rect
    capacity: int
    door: DoorState = DoorState.OPEN


#: Room names are data shown as they are; the towns' working language is German.
TEMPLATES: Final[dict[RoomTemplate, tuple[TemplateRoom, ...]]] = {
    RoomTemplate.MEETING: (TemplateRoom("Besprechungsraum", RoomKind.MEETING, Rect(80, 80, 400, 300), 8),),
    RoomTemplate.PROJECT_OFFICE: (
        TemplateRoom("Projektbüro", RoomKind.PROJECT, Rect(80, 80, 380, 300), 6),
        TemplateRoom("Besprechungsraum", RoomKind.MEETING, Rect(520, 80, 380, 300), 8),
    ),
    RoomTemplate.LOUNGE: (TemplateRoom("Lounge", RoomKind.LOUNGE, Rect(80, 80, 500, 320), 12),),
}


@dataclass(frozen=True, slots=True)
class ProjectPolicy:
    """What a municipality allows its staff (config ``projects``, per town overridable)."""

    #: "staff": every member of staff may create projects; "admin": only admins.
    creators: str = "staff"
    #: Rooms a project floor may hold (the template's plus those coordinators add).
    max_rooms: int = 4
    #: Longest time from creation to ``ends_at``, in days; 0: an end date is not required.
    max_days: int = 365

    def may_create(self, *, is_admin: bool) -> bool:
        return self.creators == "staff" or is_admin


@dataclass(frozen=True, slots=True)
class Project:
    id: str
    name: str
    purpose: str
    coordinators: tuple[PersonId, ...]
    members: tuple[PersonId, ...] = ()  # named persons besides the coordinators
    municipalities: tuple[str, ...] = ()  # whole towns: all their staff are members
    ends_at: float | None = None  # unix time; the rooms close then
    created_by: PersonId | None = None
    created_at: float = 0.0

    def lists_person(self, person: PersonId) -> bool:
        return person in self.coordinators or person in self.members

    def includes(self, person: PersonId, municipality_id: str) -> bool:
        """A member: named, a coordinator, or of a member municipality (guests are the caller's to exclude)."""
        return municipality_id in self.municipalities or self.lists_person(person)

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "name": self.name,
            "purpose": self.purpose,
            "coordinators": list(self.coordinators),
            "members": list(self.members),
            "municipalities": list(self.municipalities),
            "ends_at": self.ends_at,
            "created_by": self.created_by,
            "created_at": self.created_at,
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Project:
        created_by = d.get("created_by")
        return cls(
            id=d["id"],
            name=d["name"],
            purpose=d.get("purpose", ""),
            coordinators=tuple(PersonId(p) for p in d.get("coordinators", ())),
            members=tuple(PersonId(p) for p in d.get("members", ())),
            municipalities=tuple(d.get("municipalities", ())),
            ends_at=None if d.get("ends_at") is None else float(d["ends_at"]),
            created_by=None if created_by is None else PersonId(created_by),
            created_at=float(d.get("created_at", 0.0)),
        )
