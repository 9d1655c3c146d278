"""Typed views of the wire objects of docs/protocol.md, for Python clients.

Pure (no I/O): each ``from_wire`` takes one documented object (a ``dict`` as
python-socketio delivers it) and returns a frozen dataclass. The objects:

======================  ==========================================================
:class:`Person`         a person id ``municipality/user_id`` (protocol §1.3)
:class:`Member`         a person as others see them (§3 Shared objects)
:class:`Location`       ``{floor_id, room_id}`` (+ ``reason`` in ``presence.location``)
:class:`Presence`       the effective ``{status, text}`` after ``presence.status``
:class:`Knock`          a knock (``knock.send``, ``knock.incoming``, ``knock.pending``)
:class:`KnockOutcome`   how a knock ended (``knock.outcome``, ``knock.answer``)
:class:`Ring`           a direct call ringing (``call.ring``)
:class:`RingOutcome`    how a ring ended (``call.ring_outcome``, ``call.answer``)
:class:`Call`           a room or direct call (``call.updated``, ``call.join``)
:class:`Diff`           one floor diff, with the floor it belongs to
:class:`DiffFrame`      a ``floor.diffs`` frame
:class:`Session`        ``session.ready``
======================  ==========================================================

Contract:

* Field names are the wire's (``knock_id``, ``callee_id``, ...), except where the
  wire's name is a Python keyword (``Diff.from_room`` for ``from``).
* Every field that names a person is a :class:`Person`, which *is* the person id
  string: it compares, hashes and serialises exactly like the wire's ``str``, so
  ``outcome.by == client.person`` and ``{"person": member.person}`` just work.
* Unknown wire fields are ignored (servers may add some); ``wire`` keeps the
  object exactly as received.
* Compatibility: the objects also read like the dicts the client methods returned
  before they were typed — ``location["room_id"]``, ``answer(...)["outcome"]``,
  ``location == {"floor_id": ..., "room_id": ...}``. That mapping view is the
  method's old return value (``compat``), or the wire object. Prefer attributes.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field, fields, replace
from typing import Any, Callable, Final, TypeVar

from rooms.person import PersonId, parse_person_id, person_id, split_person

__all__ = [
    "Person",
    "WireObject",
    "Member",
    "Location",
    "Presence",
    "Knock",
    "KnockOutcome",
    "Ring",
    "RingOutcome",
    "Call",
    "Diff",
    "DiffFrame",
    "Session",
    "EVENT_PARSERS",
    "parse_event",
]

W = TypeVar("W", bound="WireObject")


class Person(str):
    """A person id, ``<municipality>/<user_id>`` (docs/protocol.md §1.3).

    A ``str`` subclass rather than a dataclass on purpose: a person id is compared
    with ids from the wire, used as a dict key and sent back in payloads, and a
    dataclass would silently compare unequal to the same id as a string.
    The municipality is everything before the *first* ``/`` (municipality ids never
    contain one; user ids may).
    """

    __slots__ = ()

    def __new__(cls, value: str) -> Person:
        if not isinstance(value, str):
            raise TypeError(f"a person id is a string 'municipality/user_id', not {type(value).__name__}")
        return super().__new__(cls, parse_person_id(value))  # the server's own rule

    @classmethod
    def of(cls, municipality: str, user_id: str) -> Person:
        return cls(person_id(municipality, user_id))

    @property
    def municipality(self) -> str:
        return split_person(PersonId(self))[0]

    @property
    def user_id(self) -> str:
        """Unique only within :attr:`municipality`: never compare it alone."""
        return split_person(PersonId(self))[1]

    @property
    def id(self) -> str:
        """The person id as a plain ``str``."""
        return str.__str__(self)

    def __repr__(self) -> str:
        return f"Person({self.id!r})"


def _person(value: Any) -> Person:
    return value if isinstance(value, Person) else Person(value)


def _opt_person(value: Any) -> Person | None:
    return None if value is None else _person(value)


@dataclass(frozen=True, eq=False)
class WireObject(Mapping[str, Any]):
    """Base of the typed objects: the received ``wire`` dict, and the read-only
    mapping view kept for code written against the untyped client (module docstring)."""

    wire: Mapping[str, Any] = field(default_factory=dict, kw_only=True, repr=False)
    compat: Mapping[str, Any] | None = field(default=None, kw_only=True, repr=False)

    def with_compat(self: W, compat: Mapping[str, Any]) -> W:
        """The same object whose mapping view is ``compat`` (a method's old return value)."""
        return replace(self, compat=compat)

    def _view(self) -> Mapping[str, Any]:
        return self.wire if self.compat is None else self.compat

    def _key(self) -> tuple[Any, ...]:
        return tuple(getattr(self, f.name) for f in fields(self) if f.name not in ("wire", "compat"))

    def __getitem__(self, key: str) -> Any:
        return self._view()[key]

    def __iter__(self) -> Iterator[str]:
        return iter(self._view())

    def __len__(self) -> int:
        return len(self._view())

    def __eq__(self, other: object) -> bool:
        if isinstance(other, WireObject):
            return type(self) is type(other) and self._key() == other._key()
        if isinstance(other, Mapping):
            return dict(self._view()) == dict(other)
        return NotImplemented

    def __hash__(self) -> int:
        return hash((type(self).__name__, self._key()))


@dataclass(frozen=True, eq=False)
class Member(WireObject):
    """A person as others see them. ``status``, ``text`` and ``room_id`` are ``None``
    where the wire leaves them out (a knocker, a caller); ``in_call`` is the call id
    of someone in a call, else ``None``."""

    person: Person
    name: str
    municipality: str
    user_id: str
    guest: bool = False
    department: str | None = None
    job_title: str | None = None
    skills: tuple[str, ...] = ()
    status: str | None = None
    text: str | None = None
    room_id: str | None = None
    in_call: str | None = None

    @classmethod
    def from_wire(cls, data: Mapping[str, Any]) -> Member:
        profile = data.get("profile") or {}
        return cls(
            person=_person(data["person"]),
            name=str(data.get("name", "")),
            municipality=str(data.get("municipality", "")),
            user_id=str(data.get("user_id", "")),
            guest=bool(data.get("guest", False)),
            department=profile.get("department"),
            job_title=profile.get("job_title"),
            skills=tuple(profile.get("skills") or ()),
            status=data.get("status"),
            text=data.get("text"),
            room_id=data.get("room_id"),
            in_call=data.get("in_call"),
            wire=data,
        )


@dataclass(frozen=True, eq=False)
class Location(WireObject):
    """Where a person is: ``floor_id`` None = on no floor, ``room_id`` None = the
    hallway. ``reason`` only when the server moved them (``presence.location``)."""

    floor_id: str | None
    room_id: str | None
    reason: str | None = None

    @classmethod
    def from_wire(cls, data: Mapping[str, Any]) -> Location:
        return cls(data.get("floor_id"), data.get("room_id"), data.get("reason"), wire=data)


@dataclass(frozen=True, eq=False)
class Presence(WireObject):
    """The person's *effective* status and text after a change (protocol §6)."""

    status: str
    text: str

    @classmethod
    def from_wire(cls, data: Mapping[str, Any]) -> Presence:
        return cls(str(data["status"]), str(data.get("text", "")), wire=data)


@dataclass(frozen=True, eq=False)
class Knock(WireObject):
    """A pending knock. ``silent`` only in ``knock.incoming`` (the recipient was in
    do-not-disturb when it was sent)."""

    knock_id: str
    room_id: str
    floor_id: str
    knocker: Member
    message: str
    expires_at: float
    to_owners: bool
    silent: bool | None = None

    @classmethod
    def from_wire(cls, data: Mapping[str, Any]) -> Knock:
        return cls(
            knock_id=str(data["knock_id"]),
            room_id=str(data["room_id"]),
            floor_id=str(data["floor_id"]),
            knocker=Member.from_wire(data["knocker"]),
            message=str(data.get("message", "")),
            expires_at=float(data["expires_at"]),
            to_owners=bool(data.get("to_owners", False)),
            silent=data.get("silent"),
            wire=data,
        )


@dataclass(frozen=True, eq=False)
class KnockOutcome(WireObject):
    """How a knock ended: ``admitted``, ``declined``, ``cancelled`` or ``expired``;
    ``by`` None and ``reason`` set when the server decided (protocol §9)."""

    knock_id: str
    room_id: str
    floor_id: str
    knocker_id: Person
    outcome: str
    by: Person | None
    reason: str | None

    @classmethod
    def from_wire(cls, data: Mapping[str, Any]) -> KnockOutcome:
        return cls(
            knock_id=str(data["knock_id"]),
            room_id=str(data["room_id"]),
            floor_id=str(data["floor_id"]),
            knocker_id=_person(data["knocker_id"]),
            outcome=str(data["outcome"]),
            by=_opt_person(data.get("by")),
            reason=data.get("reason"),
            wire=data,
        )


@dataclass(frozen=True, eq=False)
class Ring(WireObject):
    """A direct call ringing on every session of ``callee_id`` until ``expires_at``."""

    ring_id: str
    caller: Member
    callee_id: Person
    expires_at: float

    @classmethod
    def from_wire(cls, data: Mapping[str, Any]) -> Ring:
        return cls(
            ring_id=str(data["ring_id"]),
            caller=Member.from_wire(data["caller"]),
            callee_id=_person(data["callee_id"]),
            expires_at=float(data["expires_at"]),
            wire=data,
        )


@dataclass(frozen=True, eq=False)
class RingOutcome(WireObject):
    """How a ring ended: ``accepted`` (then ``call_id`` is the new direct call),
    ``declined``, ``cancelled``, ``expired`` or ``unavailable``. Exactly one per ring."""

    ring_id: str
    caller_id: Person
    callee_id: Person
    outcome: str
    by: Person | None
    call_id: str | None

    @property
    def accepted(self) -> bool:
        return self.outcome == "accepted"

    @classmethod
    def from_wire(cls, data: Mapping[str, Any]) -> RingOutcome:
        return cls(
            ring_id=str(data["ring_id"]),
            caller_id=_person(data["caller_id"]),
            callee_id=_person(data["callee_id"]),
            outcome=str(data["outcome"]),
            by=_opt_person(data.get("by")),
            call_id=data.get("call_id"),
            wire=data,
        )


@dataclass(frozen=True, eq=False)
class Call(WireObject):
    """A call and its members (sorted person ids). ``ended`` is true on the update
    that ended it."""

    call_id: str
    kind: str
    room_id: str | None
    members: tuple[Person, ...]
    topology: str
    created_at: float
    ended: bool

    @classmethod
    def from_wire(cls, data: Mapping[str, Any]) -> Call:
        return cls(
            call_id=str(data["call_id"]),
            kind=str(data["kind"]),
            room_id=data.get("room_id"),
            members=tuple(_person(m) for m in data["members"]),
            topology=str(data.get("topology", "mesh")),
            created_at=float(data.get("created_at", 0.0)),
            ended=bool(data.get("ended", False)),
            wire=data,
        )


@dataclass(frozen=True, eq=False)
class Diff(WireObject):
    """One floor diff (protocol §4 ``floor.diffs``), with its floor.

    ``person`` is who the diff is about (``joined``: the member's person; ``left``,
    ``moved``, ``status``, ``call``). ``room_id`` is where that person is now
    (``joined``, ``moved``; None = the hallway) or which room changed (``room``,
    ``room_removed``); None for the other types. The rest is in ``wire``.
    """

    floor_id: str
    seq: int
    type: str
    person: Person | None = None
    room_id: str | None = None
    member: Member | None = None
    from_room: str | None = None
    status: str | None = None
    text: str | None = None
    in_call: str | None = None

    @classmethod
    def from_wire(cls, data: Mapping[str, Any], floor_id: str) -> Diff:
        kind = str(data["type"])
        member = Member.from_wire(data["member"]) if kind == "joined" else None
        if member is not None:
            person, room_id = member.person, member.room_id
        elif kind == "room":
            person, room_id = None, data["room"]["id"]
        else:
            person, room_id = _opt_person(data.get("person")), data.get("room_id")
        return cls(
            floor_id=floor_id,
            seq=int(data["seq"]),
            type=kind,
            person=person,
            room_id=room_id,
            member=member,
            from_room=data.get("from"),
            status=data.get("status"),
            text=data.get("text"),
            in_call=data.get("in_call"),
            wire=data,
        )


@dataclass(frozen=True, eq=False)
class DiffFrame(WireObject):
    """A ``floor.diffs`` frame as received: it may repeat diffs a snapshot already
    holds (protocol §5). Handlers of the client's ``view.diff`` see each diff once."""

    floor_id: str
    diffs: tuple[Diff, ...]

    @classmethod
    def from_wire(cls, data: Mapping[str, Any]) -> DiffFrame:
        floor_id = str(data["floor_id"])
        return cls(floor_id, tuple(Diff.from_wire(d, floor_id) for d in data["diffs"]), wire=data)


@dataclass(frozen=True, eq=False)
class Session(WireObject):
    """``session.ready``: who this session is, where they are, and the knocks a
    (re)connecting session may still see or answer."""

    me: Member
    location: Location
    own_knock: Knock | None
    incoming_knocks: tuple[Knock, ...]
    token_expires_at: float
    grace_seconds: float

    @classmethod
    def from_wire(cls, data: Mapping[str, Any]) -> Session:
        knocks = data.get("knocks") or {}
        own = knocks.get("own")
        return cls(
            me=Member.from_wire(data["me"]),
            location=Location.from_wire(data["location"]),
            own_knock=None if own is None else Knock.from_wire(own),
            incoming_knocks=tuple(Knock.from_wire(k) for k in knocks.get("incoming") or ()),
            token_expires_at=float(data.get("token_expires_at", 0.0)),
            grace_seconds=float(data.get("grace_seconds", 0.0)),
            wire=data,
        )


def _ring_event(data: Mapping[str, Any]) -> Ring:
    return Ring.from_wire(data["ring"])  # the server event is {"ring": Ring}


def _call_event(data: Mapping[str, Any]) -> Call:
    return Call.from_wire(data.get("call", data))  # the Call itself; a {"call": ...} wrapper too


#: Server events with a typed payload; every other event is delivered as received.
EVENT_PARSERS: Final[Mapping[str, Callable[[Mapping[str, Any]], WireObject]]] = {
    "session.ready": Session.from_wire,
    "floor.diffs": DiffFrame.from_wire,
    "presence.location": Location.from_wire,
    "knock.incoming": Knock.from_wire,
    "knock.pending": Knock.from_wire,
    "knock.outcome": KnockOutcome.from_wire,
    "call.ring": _ring_event,
    "call.ring_outcome": RingOutcome.from_wire,
    "call.updated": _call_event,
}


def parse_event(event: str, payload: Any) -> Any:
    """The typed payload of ``event`` (:data:`EVENT_PARSERS`), or ``payload`` itself.
    Raises ``KeyError``/``ValueError`` on a payload that breaks its documented shape."""
    if isinstance(payload, WireObject):
        return payload  # already typed (the client's own events, e.g. view.diff)
    parser = EVENT_PARSERS.get(event)
    return payload if parser is None else parser(payload)
