"""Finding people: who may be seen, who matches a search, and who comes first.

Pure rules, no I/O (like :mod:`rooms.access`): the portal layer fetches profiles
and presence and asks these functions.

Visibility of *people* follows visibility of floors: a member of staff sees the
people of their own municipality and of every municipality that shares a
cooperation with it (they meet on the cooperation's floors); a guest sees only
their host municipality's people, as they see only its floors.

Ranking (the specialist finder answers "who handles X, and are they free?"):

1. availability now: ``available`` (and not in a call) first, then ``busy``,
   ``away`` and anyone in a call, then ``do_not_disturb``, then offline;
2. where they sit: on the caller's floor first, then the caller's own
   municipality, then everyone else;
3. name, then municipality and user id, so equal ranks are stable.
"""

from __future__ import annotations

import enum
import unicodedata
from collections.abc import Mapping
from dataclasses import dataclass, field

from rooms.actors import Actor, Profile
from rooms.model import Cooperation
from rooms.person import PersonId, person_id

__all__ = [
    "Person",
    "Availability",
    "SearchCriteria",
    "visible_municipalities",
    "availability",
    "nearness",
    "normalise",
    "matches",
    "rank_key",
]


@dataclass(frozen=True, slots=True)
class Person:
    """A profile the directory knows: what the token said when they were last seen."""

    user_id: str  # unique only within ``municipality``: key people by :attr:`id`
    municipality: str
    name: str
    profile: Profile = field(default_factory=Profile)
    seen: float = 0.0  # unix time of the last connect or token refresh

    @property
    def id(self) -> PersonId:
        return person_id(self.municipality, self.user_id)

    @classmethod
    def of(cls, actor: Actor, seen: float) -> Person:
        return cls(actor.user_id, actor.municipality_id, actor.display_name, actor.profile, seen)


class Availability(enum.IntEnum):
    """Lower is more available (the first sort key of the finder)."""

    AVAILABLE = 0
    BUSY = 1  # busy, away, or available but in a call
    DO_NOT_DISTURB = 2
    OFFLINE = 3


def visible_municipalities(actor: Actor, cooperations: Mapping[str, Cooperation]) -> frozenset[str]:
    """The municipalities whose people ``actor`` may see (see the module docstring)."""
    own = actor.municipality_id
    if actor.is_guest:
        return frozenset({own})
    seen = {own}
    for cooperation in cooperations.values():
        if own in cooperation.members:
            seen.update(cooperation.members)
    return frozenset(seen)


def availability(status: str | None, *, in_call: bool) -> Availability:
    """``status`` is the effective presence status, or None for someone offline."""
    if status is None:
        return Availability.OFFLINE
    if status == "do_not_disturb":
        return Availability.DO_NOT_DISTURB
    if status == "available" and not in_call:
        return Availability.AVAILABLE
    return Availability.BUSY


def nearness(
    caller_municipality: str, caller_floor: str | None, municipality: str, floor_id: str | None
) -> int:
    """0: on the caller's floor, 1: the caller's municipality, 2: elsewhere."""
    if caller_floor is not None and floor_id == caller_floor:
        return 0
    return 1 if municipality == caller_municipality else 2


def normalise(text: str) -> str:
    """Case- and form-insensitive text for matching (``ß`` matches ``ss``)."""
    return unicodedata.normalize("NFKC", text).casefold()


@dataclass(frozen=True, slots=True)
class SearchCriteria:
    """What a search asks for, already normalised. Every given part must match:
    each word of ``words`` somewhere in the person's name, department, job title or
    skills; ``skill`` within one skill; ``department`` / ``job_title`` within those."""

    words: tuple[str, ...] = ()
    skill: str = ""
    department: str = ""
    job_title: str = ""

    @classmethod
    def build(cls, q: str = "", skill: str = "", department: str = "", job_title: str = "") -> SearchCriteria:
        return cls(
            tuple(normalise(w) for w in q.split()),
            normalise(skill.strip()),
            normalise(department.strip()),
            normalise(job_title.strip()),
        )

    @property
    def empty(self) -> bool:
        return not (self.words or self.skill or self.department or self.job_title)


def matches(person: Person, criteria: SearchCriteria) -> bool:
    profile = person.profile
    skills = [normalise(s) for s in profile.skills]
    department = normalise(profile.department or "")
    job_title = normalise(profile.job_title or "")
    if criteria.skill and not any(criteria.skill in s for s in skills):
        return False
    if criteria.department and criteria.department not in department:
        return False
    if criteria.job_title and criteria.job_title not in job_title:
        return False
    haystack = "\n".join([normalise(person.name), department, job_title, *skills])
    return all(word in haystack for word in criteria.words)


def rank_key(person: Person, available: Availability, near: int) -> tuple[int, int, str, str, str]:
    """Sort key implementing the ranking of the module docstring."""
    return (int(available), near, normalise(person.name), person.municipality, person.user_id)

