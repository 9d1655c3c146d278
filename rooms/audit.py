"""The audit trail's domain part: one entry per administrative change or admission.

An :class:`AuditEntry` says *when*, *who* (a qualified person, or ``None`` for
the system itself, e.g. a room expiring), *what* (a dotted action such as
``room.updated``), *on what* (``target``: kinds and ids) and *which fields
changed* (``change``: ``{field: {"old": a, "new": b}}``; ``old`` is left out on
a creation and ``new`` on a deletion). ``scopes`` name the municipalities whose
admins may read the entry, ``project`` the project whose coordinators may.

Never recorded, by design: movements, status changes, calls, knocks that were
declined or cancelled. An entry records an administrative act or an admission,
not what people do all day (docs/privacy.md, "Audit trail").

:class:`AuditSink` is what domain code records into
(:class:`~rooms.campus.CampusService`, the knock service); the server's
implementation is :class:`presence_server.audit.service.AuditLog`. Nothing
here does I/O.
"""

from __future__ import annotations

import secrets
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, Final, Protocol

from rooms.model import Cooperation, Floor, OwnerKind
from rooms.person import PersonId, split_person

__all__ = [
    "AuditEntry",
    "AuditSink",
    "ACTIONS",
    "new_entry_id",
    "entry_id_bound",
    "field_changes",
    "floor_scopes",
]

#: The actions recorded today (projects, invitations and onboarding add theirs).
#: Not enforced: a new feature records its own dotted action without touching this.
ACTIONS: Final = (
    "floor.created",
    "floor.updated",
    "floor.deleted",
    "room.created",
    "room.updated",
    "door.changed",
    "room.deleted",
    "room.expired",
    "knock.admitted",
)

# Ids sort in time order: 16 digits of microseconds since the epoch (enough until
# the year 2286), then a random part so two entries of one microsecond differ.
# Every store orders, ranges and pages by id alone.
_MICROS: Final = 1_000_000
_DIGITS: Final = 16


def entry_id_bound(at: float) -> str:
    """The id prefix of time ``at``: every entry recorded at or after ``at`` has an
    id ``>=`` this, every one before it an id ``<`` this."""
    return f"{max(0, int(at * _MICROS)):0{_DIGITS}d}"


def new_entry_id(at: float, *, previous: str | None = None) -> str:
    """A unique id that sorts by time: ``<16 digits of microseconds>-<8 hex digits>``.

    ``previous`` (the last id this recorder made) keeps one recorder's entries in
    the order it made them even within one microsecond or if its clock steps
    back: the time part is then one microsecond past the previous one's.
    """
    micros = max(0, int(at * _MICROS))
    if previous is not None:
        micros = max(micros, int(previous[:_DIGITS]) + 1)
    return f"{micros:0{_DIGITS}d}-{secrets.token_hex(4)}"


@dataclass(frozen=True, slots=True)
class AuditEntry:
    """One recorded act. JSON-ready through :meth:`to_dict` / :meth:`from_dict`."""

    id: str
    at: float  # unix time, seconds
    actor: PersonId | None  # None: the system (expiry)
    actor_municipality: str | None
    action: str  # dotted: floor.created, door.changed, knock.admitted, ...
    target: Mapping[str, str]  # kind -> id, e.g. {"room": "r-1", "floor": "f-1"}
    change: Mapping[str, Any] = field(default_factory=dict)  # field -> {"old": a, "new": b}
    scopes: tuple[str, ...] = ()  # municipalities whose admins may read it
    project: str | None = None  # the project whose coordinators may read it

    @classmethod
    def new(
        cls,
        action: str,
        *,
        at: float,
        actor: PersonId | None,
        target: Mapping[str, str],
        change: Mapping[str, Any] | None = None,
        scopes: Iterable[str] = (),
        project: str | None = None,
        previous: str | None = None,
    ) -> AuditEntry:
        """A new entry with a fresh id (after ``previous``, see :func:`new_entry_id`);
        the actor's municipality is taken from the person id."""
        return cls(
            id=new_entry_id(at, previous=previous),
            at=at,
            actor=actor,
            actor_municipality=None if actor is None else split_person(actor)[0],
            action=action,
            target=dict(target),
            change=dict(change or {}),
            scopes=tuple(sorted(set(scopes))),
            project=project,
        )

    def readable_by_municipality(self, municipality: str) -> bool:
        return municipality in self.scopes

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "at": self.at,
            "actor": self.actor,
            "actor_municipality": self.actor_municipality,
            "action": self.action,
            "target": dict(self.target),
            "change": dict(self.change),
            "scopes": list(self.scopes),
            "project": self.project,
        }

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> AuditEntry:
        actor = d.get("actor")
        return cls(
            id=str(d["id"]),
            at=float(d["at"]),
            actor=None if actor is None else PersonId(str(actor)),
            actor_municipality=d.get("actor_municipality"),
            action=str(d["action"]),
            target={str(k): str(v) for k, v in dict(d.get("target") or {}).items()},
            change=dict(d.get("change") or {}),
            scopes=tuple(str(s) for s in d.get("scopes") or ()),
            project=d.get("project"),
        )


def field_changes(
    old: Mapping[str, Any] | None, new: Mapping[str, Any] | None, fields: Iterable[str]
) -> dict[str, dict[str, Any]]:
    """``{field: {"old": a, "new": b}}`` for each of ``fields`` that differs.

    ``old`` None (a creation) gives ``{"new": b}`` for every field, ``new`` None (a
    deletion) ``{"old": a}``. Values must be JSON-ready (``to_dict`` forms).
    """
    out: dict[str, dict[str, Any]] = {}
    for name in fields:
        if old is None and new is not None:
            out[name] = {"new": new.get(name)}
        elif new is None and old is not None:
            out[name] = {"old": old.get(name)}
        elif old is not None and new is not None and old.get(name) != new.get(name):
            out[name] = {"old": old.get(name), "new": new.get(name)}
    return out


def floor_scopes(
    floor: Floor | None, cooperations: Mapping[str, Cooperation], *, fallback: Iterable[str] = ()
) -> tuple[str, ...]:
    """Whose admins may read an entry about something on ``floor``: the admins of
    the floor's owner — its municipality, or every member of its cooperation (each
    of them administers the floor, rooms.access). ``fallback`` (the actor's
    municipality) when the floor or its cooperation is unknown."""
    if floor is not None and floor.owner_kind is OwnerKind.MUNICIPALITY:
        return (floor.owner_id,)
    cooperation = None if floor is None else cooperations.get(floor.owner_id)
    return tuple(cooperation.members) if cooperation is not None else tuple(fallback)


class AuditSink(Protocol):
    """Where domain code records what it did, after it succeeded.

    Contract: :meth:`record` never raises for an outage of the store behind it
    (the act it records has already happened and must not be reported as
    failed); an entry it cannot store is logged in full and counted instead.
    """

    async def record(
        self,
        action: str,
        *,
        actor: PersonId | None,
        target: Mapping[str, str],
        change: Mapping[str, Any] | None = None,
        scopes: Iterable[str] = (),
        project: str | None = None,
    ) -> AuditEntry:
        """Record one act now; returns the entry as stored."""
        ...
