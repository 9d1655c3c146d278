"""Room calls, direct calls and the signalling-relay rule, as a pure state machine.

:class:`CallBook` follows :class:`rooms.knocks.KnockBook`: synchronous, never awaits,
takes ``now`` and every id from the caller, and refuses with
:class:`rooms.errors.DomainError`. The gateway wraps it: it checks what the book
cannot know (is the user inside the room, is the callee in do-not-disturb, is a
session still connected), calls one method, and tells the audience the returned
values name.

Contracts:

* A room has at most one call; a user is in at most one call at a time. Joining a
  call leaves the previous one, and the previous call is returned so its remaining
  members can be told.
* A room call is a mesh of at most ``max_mesh`` members. Past that the join is
  refused (``call_full``) unless an SFU is configured, in which case the call's
  topology becomes :attr:`Topology.SFU` (the seam; no SFU is implemented here).
* A call with no members ends; a DIRECT call ends as soon as one member leaves.
* A ring is *pending* until exactly one of accepted, declined, cancelled, expired or
  unavailable resolves it: the first answer takes it out of the book, every later
  one is refused (``ring_resolved``). An accepted ring
  becomes a DIRECT call with both parties.
* Signalling (SDP, ICE candidates) is relayed only between two different members of
  the same call.

Single node: the book is process memory. A cluster store gives the same "first
answer wins" guarantee with an atomic compare-and-delete.

Error codes: ``call_full``, ``not_in_call``, ``do_not_disturb`` and
``ring_resolved`` are the calls' own; other refusals use a general code with a
machine-readable ``detail`` (``conflict``/``already_ringing``, ...).
"""

from __future__ import annotations

import enum
from collections import OrderedDict
from dataclasses import dataclass, replace
from typing import Any, Final, NamedTuple

from rooms.actors import Actor
from rooms.errors import DomainError, ErrorCode
from rooms.person import PersonId

__all__ = [
    "ALREADY_RINGING",
    "ALREADY_IN_CALL",
    "CONFLICT_REASONS",
    "CallKind",
    "Topology",
    "Call",
    "RoomJoin",
    "Ring",
    "RingOutcome",
    "RingResolution",
    "Note",
    "CallBook",
    "clean_note",
    "DEFAULT_MAX_MESH",
    "DEFAULT_RING_TIMEOUT",
    "DEFAULT_NOTE_MAX_CHARS",
    "DEFAULT_NOTES_PER_CALLEE",
    "RECENT_RINGS_REMEMBERED",
]

#: Sub-reasons of a ``conflict`` on ``call.ring``, sent as the error's ``reason``
#: field so that clients never parse the message text.
ALREADY_RINGING: Final = "already_ringing"
ALREADY_IN_CALL: Final = "already_in_call"
CONFLICT_REASONS: Final = frozenset({ALREADY_RINGING, ALREADY_IN_CALL})

DEFAULT_MAX_MESH: Final = 6  # a full mesh costs every peer n-1 uplinks; six is where laptops start to struggle
DEFAULT_RING_TIMEOUT: Final = 30.0
DEFAULT_NOTE_MAX_CHARS: Final = 280
DEFAULT_NOTES_PER_CALLEE: Final = 20
RECENT_RINGS_REMEMBERED: Final = 4096  # resolved ring ids remembered, to tell "already answered" from "never existed"


class CallKind(str, enum.Enum):
    ROOM = "room"
    DIRECT = "direct"


class Topology(str, enum.Enum):
    MESH = "mesh"  # every member connects to every other member
    SFU = "sfu"  # every member connects to a selective forwarding unit (not implemented: the seam)


@dataclass(frozen=True, slots=True)
class Call:
    """One call as of one moment. Values are replaced, never mutated.

    ``ended_at`` is set only on the value :meth:`CallBook.leave` returns for the
    departure that ended the call; its ``members`` are then the people to tell."""

    id: str
    kind: CallKind
    room_id: str | None
    members: frozenset[PersonId]
    created_at: float
    topology: Topology = Topology.MESH
    ended_at: float | None = None

    @property
    def ended(self) -> bool:
        return self.ended_at is not None

    def to_wire(self) -> dict[str, Any]:
        return {
            "call_id": self.id,
            "kind": self.kind.value,
            "room_id": self.room_id,
            "members": sorted(self.members),
            "topology": self.topology.value,
            "created_at": self.created_at,
            "ended": self.ended,
        }


class RoomJoin(NamedTuple):
    """What :meth:`CallBook.join_room_call` did: the call joined, whether it was
    created, and the call the user left to join it (``None`` if none)."""

    call: Call
    created: bool
    left: Call | None


class RingOutcome(str, enum.Enum):
    ACCEPTED = "accepted"
    DECLINED = "declined"
    CANCELLED = "cancelled"
    EXPIRED = "expired"
    UNAVAILABLE = "unavailable"  # the callee went away (disconnected, do-not-disturb) while it rang


@dataclass(frozen=True, slots=True)
class Ring:
    id: str
    caller: Actor
    callee: PersonId  # every session of the callee is notified
    created_at: float
    expires_at: float

    def to_wire(self) -> dict[str, Any]:
        return {
            "ring_id": self.id,
            "caller": self.caller.public_dict(),
            "callee_id": self.callee,
            "expires_at": self.expires_at,
        }


@dataclass(frozen=True, slots=True)
class RingResolution:
    """How a ring ended. Sent to every session of both parties, so the devices that
    did not answer stop ringing. On ACCEPTED, ``call`` is the new DIRECT call and
    ``left`` the calls the two parties left to join it (tell their members)."""

    ring: Ring
    outcome: RingOutcome
    at: float
    by: PersonId | None = None  # whoever answered or cancelled; None when the book decided
    call: Call | None = None
    left: tuple[Call, ...] = ()

    def to_wire(self) -> dict[str, Any]:
        return {
            "ring_id": self.ring.id,
            "caller_id": self.ring.caller.person_id,
            "callee_id": self.ring.callee,
            "outcome": self.outcome.value,
            "by": self.by,
            "call_id": self.call.id if self.call else None,
        }


@dataclass(frozen=True, slots=True)
class Note:
    """A short message left for a callee who could not be rung."""

    caller: Actor
    callee: PersonId
    text: str
    created_at: float

    def to_wire(self) -> dict[str, Any]:
        return {"from": self.caller.public_dict(), "text": self.text, "created_at": self.created_at}


def clean_note(caller_id: PersonId, callee: PersonId, text: str, max_chars: int) -> str:
    """The note's text, stripped; refused when empty, too long or for oneself."""
    if caller_id == callee:
        raise DomainError(ErrorCode.INVALID_PAYLOAD, "cannot_note_yourself")
    text = text.strip()
    if not text:
        raise DomainError(ErrorCode.INVALID_PAYLOAD, "empty_note")
    if len(text) > max_chars:
        # Like a status text or knock message over its cap (protocol.md §10).
        raise DomainError(ErrorCode.INVALID_PAYLOAD, f"text: at most {max_chars} characters", field="text")
    return text


class CallBook:
    """Calls, pending rings and notes on one node. Never awaits; the caller supplies
    ``now`` and ids."""

    def __init__(
        self,
        *,
        max_mesh: int = DEFAULT_MAX_MESH,
        ring_timeout: float = DEFAULT_RING_TIMEOUT,
        sfu: bool = False,
        note_max_chars: int = DEFAULT_NOTE_MAX_CHARS,
        notes_per_callee: int = DEFAULT_NOTES_PER_CALLEE,
    ) -> None:
        if max_mesh < 2:
            raise ValueError("max_mesh must be at least 2")
        if ring_timeout <= 0:
            raise ValueError("ring_timeout must be positive")
        if note_max_chars < 1 or notes_per_callee < 1:
            raise ValueError("note limits must be positive")
        self.max_mesh = max_mesh
        self.ring_timeout = ring_timeout
        self.sfu = sfu
        self.note_max_chars = note_max_chars
        self.notes_per_callee = notes_per_callee
        self._calls: dict[str, Call] = {}
        self._call_of: dict[PersonId, str] = {}  # person -> call id
        self._room_call: dict[str, str] = {}  # room id -> call id
        self._room_seq = 0  # default room call ids: a call that ends and restarts gets a new id
        self._rings: dict[str, Ring] = {}
        self._ringing: dict[tuple[PersonId, PersonId], str] = {}  # (caller, callee) -> ring id
        self._recent: OrderedDict[str, None] = OrderedDict()
        self._notes: dict[PersonId, list[Note]] = {}

    # ----------------------------------------------------------------- calls

    def call_of(self, person: PersonId) -> Call | None:
        call_id = self._call_of.get(person)
        return self._calls[call_id] if call_id else None

    def call(self, call_id: str) -> Call:
        """The live call; ``not_found`` once it has ended or if it never existed."""
        call = self._calls.get(call_id)
        if call is None:
            raise DomainError(ErrorCode.NOT_FOUND, "call")
        return call

    def members(self, call_id: str) -> frozenset[str]:
        return self.call(call_id).members

    def room_call(self, room_id: str) -> Call | None:
        call_id = self._room_call.get(room_id)
        return self._calls[call_id] if call_id else None

    def calls(self) -> list[Call]:
        return list(self._calls.values())

    def join_room_call(self, person: PersonId, room_id: str, now: float, *, call_id: str | None = None) -> RoomJoin:
        """Join the room's call, creating it (with ``call_id`` or a generated id) if
        there is none. The caller has checked that the user is inside the room.

        Idempotent: joining the call one is in returns it with ``created=False``.
        Refused with ``call_full`` (carrying ``max_mesh``) past ``max_mesh`` unless an SFU is
        configured. Checked *before* leaving the previous call, so a refused join
        leaves the user where they were."""
        current = self._room_call.get(room_id)
        if current is not None and self._call_of.get(person) == current:
            return RoomJoin(self._calls[current], False, None)
        call = self._calls[current] if current is not None else None
        if call is not None and len(call.members) >= self.max_mesh and not self.sfu:
            raise DomainError(ErrorCode.CALL_FULL, max_mesh=self.max_mesh)
        if call is None and call_id is not None and call_id in self._calls:
            raise DomainError(ErrorCode.CONFLICT, "call_id_taken")
        left = self._remove(person, now)
        if call is None:
            if call_id is None:
                self._room_seq += 1
                call_id = f"room:{room_id}:{self._room_seq}"
            call = Call(call_id, CallKind.ROOM, room_id, frozenset({person}), created_at=now)
            self._room_call[room_id] = call_id
            created = True
        else:
            members = call.members | {person}
            # Never back to MESH within a call: every switch makes all peers renegotiate,
            # so flapping at the boundary would be worse than staying on the SFU.
            topology = Topology.SFU if len(members) > self.max_mesh else call.topology
            call = replace(call, members=members, topology=topology)
            created = False
        self._calls[call.id] = call
        self._call_of[person] = call.id
        return RoomJoin(call, created, left)

    def leave(self, person: PersonId, now: float) -> Call | None:
        """Take the user out of their call (left the call, or disconnected).

        Returns ``None`` if they were in none; otherwise the call after their
        departure: its ``members`` are the people to tell, and ``ended_at`` is set if
        the departure ended it (no members left, or a DIRECT call down to one)."""
        return self._remove(person, now)

    def leave_room(self, person: PersonId, room_id: str, now: float) -> Call | None:
        """The user walked out of ``room_id``: leave its call, but not a DIRECT call
        they may be in while standing in that room."""
        call_id = self._room_call.get(room_id)
        if call_id is None or self._call_of.get(person) != call_id:
            return None
        return self._remove(person, now)

    def _remove(self, person: PersonId, now: float) -> Call | None:
        call_id = self._call_of.pop(person, None)
        if call_id is None:
            return None
        call = self._calls[call_id]
        after = replace(call, members=call.members - {person})
        ends = not after.members or (call.kind is CallKind.DIRECT and len(after.members) < 2)
        if not ends:
            self._calls[call_id] = after
            return after
        del self._calls[call_id]
        for member in after.members:
            self._call_of.pop(member, None)
        if call.room_id is not None and self._room_call.get(call.room_id) == call_id:
            del self._room_call[call.room_id]
        return replace(after, ended_at=now)

    # ----------------------------------------------------------------- relay

    def may_relay(self, sender: PersonId, recipient: PersonId) -> bool:
        """True iff both are members of the same call and are different people."""
        if sender == recipient:
            return False
        call_id = self._call_of.get(sender)
        return call_id is not None and self._call_of.get(recipient) == call_id

    def check_relay(self, sender: PersonId, recipient: PersonId) -> None:
        """Raise ``not_in_call`` (``forbidden`` for oneself) unless :meth:`may_relay`."""
        if not self.may_relay(sender, recipient):
            if sender == recipient:
                raise DomainError(ErrorCode.FORBIDDEN, "self")
            raise DomainError(ErrorCode.NOT_IN_CALL)

    # ----------------------------------------------------------------- rings

    def __len__(self) -> int:
        """Pending rings."""
        return len(self._rings)

    def get_ring(self, ring_id: str) -> Ring:
        ring = self._rings.get(ring_id)
        if ring is None:
            if ring_id in self._recent:
                raise DomainError(ErrorCode.RING_RESOLVED)
            raise DomainError(ErrorCode.NOT_FOUND, "ring")
        return ring

    def rings_for(self, callee: PersonId) -> list[Ring]:
        """Pending rings to ``callee`` (to replay to a session that connects late)."""
        return [r for r in self._rings.values() if r.callee == callee]

    def rings_by(self, caller: PersonId) -> list[Ring]:
        return [r for r in self._rings.values() if r.caller.person_id == caller]

    def ring(self, ring_id: str, caller: Actor, callee: PersonId, *, callee_dnd: bool, now: float) -> Ring:
        """Start ringing every session of ``callee``.

        Refused: ringing oneself; a callee this caller is already ringing or already
        in a call with; a callee in do-not-disturb (``nobody_to_answer`` with detail
        ``do_not_disturb``; the caller is told at once and may :meth:`leave_note`)."""
        if caller.person_id == callee:
            raise DomainError(ErrorCode.INVALID_PAYLOAD, "cannot_ring_yourself")
        if ring_id in self._rings or ring_id in self._recent:
            raise DomainError(ErrorCode.CONFLICT, "ring_id_taken")
        if (caller.person_id, callee) in self._ringing:
            raise DomainError(ErrorCode.CONFLICT, ALREADY_RINGING, reason=ALREADY_RINGING)
        if self.may_relay(caller.person_id, callee):
            raise DomainError(ErrorCode.CONFLICT, ALREADY_IN_CALL, reason=ALREADY_IN_CALL)
        if callee_dnd:
            raise DomainError(ErrorCode.DO_NOT_DISTURB)
        ring = Ring(ring_id, caller, callee, created_at=now, expires_at=now + self.ring_timeout)
        self._rings[ring_id] = ring
        self._ringing[(caller.person_id, callee)] = ring_id
        return ring

    def answer(self, ring_id: str, callee: PersonId, accept: bool, now: float) -> RingResolution:
        """The callee answers from one of their devices. The first answer wins on all
        devices; later ones get ``knock_resolved``/``ring_resolved``. An answer at or
        after ``expires_at`` resolves the ring as EXPIRED instead (the timer had not
        fired yet). Accepting moves both parties into a new DIRECT call whose id is
        ``direct:<ring_id>``, leaving whatever call each was in."""
        ring = self.get_ring(ring_id)
        if callee != ring.callee:
            raise DomainError(ErrorCode.FORBIDDEN, "not_callee")
        if now >= ring.expires_at:
            return self._resolve(ring, RingOutcome.EXPIRED, now)
        if not accept:
            return self._resolve(ring, RingOutcome.DECLINED, now, by=callee)
        caller = ring.caller.person_id
        departures = [c for c in (self._remove(caller, now), self._remove(callee, now)) if c is not None]
        # If both were in the same call it appears twice: keep its value after both left.
        left = tuple({c.id: c for c in departures}.values())
        call = Call(f"direct:{ring.id}", CallKind.DIRECT, None, frozenset({caller, callee}), created_at=now)
        self._calls[call.id] = call
        self._call_of[caller] = call.id
        self._call_of[callee] = call.id
        resolution = self._resolve(ring, RingOutcome.ACCEPTED, now, by=callee)
        return replace(resolution, call=call, left=left)

    def cancel(self, ring_id: str, caller: PersonId, now: float) -> RingResolution:
        """The caller hangs up before an answer. Only the caller may cancel."""
        ring = self.get_ring(ring_id)
        if caller != ring.caller.person_id:
            raise DomainError(ErrorCode.FORBIDDEN, "not_caller")
        if now >= ring.expires_at:
            return self._resolve(ring, RingOutcome.EXPIRED, now)
        return self._resolve(ring, RingOutcome.CANCELLED, now, by=caller)

    def due(self, now: float) -> list[Ring]:
        """Pending rings whose time is up (the caller resolves them with :meth:`expire`)."""
        return [r for r in self._rings.values() if r.expires_at <= now]

    def expire(self, ring_id: str, now: float) -> RingResolution:
        """Resolve a due ring as EXPIRED; ``conflict``/``not_due`` before its time."""
        ring = self.get_ring(ring_id)
        if now < ring.expires_at:
            raise DomainError(ErrorCode.CONFLICT, "not_due")
        return self._resolve(ring, RingOutcome.EXPIRED, now)

    def callee_unavailable(self, callee: PersonId, now: float) -> list[RingResolution]:
        """The callee's last session went away or they switched to do-not-disturb:
        every ring to them resolves as UNAVAILABLE."""
        return [self._resolve(r, RingOutcome.UNAVAILABLE, now) for r in self.rings_for(callee)]

    def cancel_all(self, caller: PersonId, now: float) -> list[RingResolution]:
        """The caller's last session went away: their rings are cancelled."""
        return [self._resolve(r, RingOutcome.CANCELLED, now, by=caller) for r in self.rings_by(caller)]

    def _resolve(self, ring: Ring, outcome: RingOutcome, now: float, *, by: PersonId | None = None) -> RingResolution:
        del self._rings[ring.id]
        del self._ringing[(ring.caller.person_id, ring.callee)]
        self._recent[ring.id] = None
        if len(self._recent) > RECENT_RINGS_REMEMBERED:
            self._recent.popitem(last=False)
        return RingResolution(ring, outcome, at=now, by=by)

    # ----------------------------------------------------------------- notes

    def leave_note(self, caller: Actor, callee: PersonId, text: str, now: float) -> Note:
        """Leave a note for a callee who could not be rung (the gateway allows it when
        the callee is in do-not-disturb). Text is stripped and bounded by
        ``note_max_chars``. A caller's new note replaces their earlier one, so one
        persistent caller cannot fill the box; at most ``notes_per_callee`` callers
        may have a note waiting (``conflict``/``note_box_full`` beyond)."""
        text = clean_note(caller.person_id, callee, text, self.note_max_chars)
        box = [n for n in self._notes.get(callee, []) if n.caller.person_id != caller.person_id]
        if len(box) >= self.notes_per_callee:
            raise DomainError(ErrorCode.CONFLICT, "note_box_full")
        note = Note(caller, callee, text, created_at=now)
        box.append(note)
        self._notes[callee] = box
        return note

    def notes_for(self, callee: PersonId) -> list[Note]:
        """The notes waiting, without taking them."""
        return list(self._notes.get(callee, []))

    def take_notes(self, callee: PersonId) -> list[Note]:
        """Return the callee's notes, oldest first, and clear them. Call when the
        callee becomes available; a second call returns nothing."""
        return self._notes.pop(callee, [])
