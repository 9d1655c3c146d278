"""Who is acting: the identity domain code reasons about.

Built by the auth layer from a verified token; domain code never sees the token.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from typing import Any

from rooms.person import PersonId, person_id

__all__ = ["Role", "Profile", "Actor"]


class Role(str, enum.Enum):
    STAFF = "staff"
    ADMIN = "admin"  # administers the campus of their municipality and its cooperations
    GUEST = "guest"  # a visitor: sees only their host municipality's floors, answers no knocks


@dataclass(frozen=True, slots=True)
class Profile:
    department: str | None = None
    job_title: str | None = None
    skills: tuple[str, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        return {"department": self.department, "job_title": self.job_title, "skills": list(self.skills)}


@dataclass(frozen=True, slots=True)
class Actor:
    """A verified person. ``user_id`` is the token's subject, unique only within
    ``municipality_id``: anything that identifies the person uses :attr:`person_id`."""

    user_id: str
    municipality_id: str
    display_name: str
    roles: frozenset[Role] = frozenset({Role.STAFF})
    profile: Profile = field(default_factory=Profile)
    #: An invited guest is confined to this project: they see its floor and nothing
    #: else, not even their host municipality's floors (rooms/project.py).
    project: str | None = None
    #: (municipality, user id) in its string form; derived, computed once.
    person_id: PersonId = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "person_id", person_id(self.municipality_id, self.user_id))

    @property
    def is_admin(self) -> bool:
        # A token that carries guest never administers, whatever else it carries:
        # a guest invitation must not become an admin by an identity provider's mistake.
        return Role.ADMIN in self.roles and Role.GUEST not in self.roles

    @property
    def is_guest(self) -> bool:
        # guest without staff: a visitor. staff+guest is staff; guest+admin is still a
        # guest (admin adds rights to staff, it does not turn a visitor into staff).
        return Role.GUEST in self.roles and Role.STAFF not in self.roles

    def to_record(self) -> dict[str, Any]:
        """Everything about the actor, for stores: fixed key order and sorted roles,
        so equal actors give equal encodings (the Redis scripts compare them)."""
        return {
            "user_id": self.user_id,
            "municipality_id": self.municipality_id,
            "display_name": self.display_name,
            "roles": sorted(role.value for role in self.roles),
            "profile": self.profile.to_dict(),
            "project": self.project,
        }

    @classmethod
    def from_record(cls, d: dict[str, Any]) -> Actor:
        """The inverse of :meth:`to_record`."""
        p = d["profile"]
        return cls(
            d["user_id"],
            d["municipality_id"],
            d["display_name"],
            frozenset(Role(r) for r in d["roles"]),
            Profile(p["department"], p["job_title"], tuple(p["skills"])),
            d.get("project"),
        )

    def public_dict(self) -> dict[str, Any]:
        """What other users may see of this person."""
        return {
            "person": self.person_id,
            "user_id": self.user_id,
            "name": self.display_name,
            "municipality": self.municipality_id,
            "guest": self.is_guest,
            "profile": self.profile.to_dict(),
        }
