"""The typed wire objects of the Python client (signalling/wire.py), from the
objects of docs/protocol.md."""

from __future__ import annotations

from typing import Any

import pytest

from signalling.wire import (
    Call,
    Diff,
    DiffFrame,
    Knock,
    KnockOutcome,
    Location,
    Person,
    Presence,
    Ring,
    RingOutcome,
    parse_event,
)

LEA = "lindenau/lea.lindenau"
ANNA = "altbach/anna.altbach"


def member(person: str, **extra: Any) -> dict[str, Any]:
    municipality, user_id = person.split("/", 1)
    return {"person": person, "user_id": user_id, "name": user_id.title(), "municipality": municipality,
            "guest": False, "profile": {"department": "IT", "job_title": None, "skills": ["GIS"]}, **extra}


def test_a_person_is_its_id_string_with_its_two_parts() -> None:
    lea = Person(LEA)
    assert (lea.municipality, lea.user_id, lea.id) == ("lindenau", "lea.lindenau", LEA)
    assert lea == LEA and {LEA: 1}[lea] == 1 and type(lea.id) is str
    assert Person.of("seefeld", "a/b").user_id == "a/b"  # only the first slash separates
    assert Person("seefeld/a/b").municipality == "seefeld"


@pytest.mark.parametrize("bare", ["lea.lindenau", "/lea", "lindenau/"])
def test_a_bare_user_id_is_not_a_person(bare: str) -> None:
    with pytest.raises(ValueError, match="municipality/user_id"):
        Person(bare)


def test_a_knock_and_its_outcome_are_typed_down_to_their_persons() -> None:
    wire = {"knock_id": "k-1", "room_id": "r", "floor_id": "f", "knocker": member(ANNA), "message": "Kurz?",
            "expires_at": 100.5, "to_owners": False, "silent": True}
    knock = Knock.from_wire(wire)
    assert knock.knocker.person == ANNA and knock.knocker.department == "IT" and knock.knocker.skills == ("GIS",)
    assert knock.knocker.status is None and knock.silent is True and knock.wire is wire
    outcome = KnockOutcome.from_wire({"knock_id": "k-1", "room_id": "r", "floor_id": "f", "knocker_id": ANNA,
                                      "outcome": "admitted", "by": LEA, "reason": None})
    assert (outcome.outcome, outcome.by, outcome.knocker_id.municipality) == ("admitted", LEA, "altbach")


def test_rings_calls_and_their_outcomes() -> None:
    ring = parse_event("call.ring", {"ring": {"ring_id": "ring-1", "caller": member(ANNA), "callee_id": LEA,
                                              "expires_at": 30.0}})
    assert isinstance(ring, Ring) and ring.caller.person == ANNA and ring.callee_id == LEA
    outcome = parse_event("call.ring_outcome", {"ring_id": "ring-1", "caller_id": ANNA, "callee_id": LEA,
                                                "outcome": "accepted", "by": LEA, "call_id": "direct:1"})
    assert isinstance(outcome, RingOutcome) and outcome.accepted and outcome.call_id == "direct:1"
    call = parse_event("call.updated", {"call_id": "direct:1", "kind": "direct", "room_id": None,
                                        "members": [ANNA, LEA], "topology": "mesh", "created_at": 1.0,
                                        "ended": False})
    assert isinstance(call, Call) and call.members == (ANNA, LEA) and Person(ANNA) in call.members


def test_diffs_say_who_and_where() -> None:
    frame = parse_event("floor.diffs", {"floor_id": "f", "diffs": [
        {"seq": 1, "type": "joined", "member": member(ANNA, status="available", text="", room_id="r")},
        {"seq": 2, "type": "moved", "person": ANNA, "from": "r", "room_id": None},
        {"seq": 3, "type": "room", "room": {"id": "r2", "door": "open"}},
        {"seq": 4, "type": "status", "person": ANNA, "status": "busy", "text": "Termin"},
        {"seq": 5, "type": "something_new", "whatever": 1},
    ]})
    assert isinstance(frame, DiffFrame)
    joined, moved, room, status, unknown = frame.diffs
    assert (joined.person, joined.room_id, joined.member and joined.member.status) == (ANNA, "r", "available")
    assert (moved.person, moved.from_room, moved.room_id, moved.floor_id) == (ANNA, "r", None, "f")
    assert (room.person, room.room_id) == (None, "r2")
    assert (status.status, status.text) == ("busy", "Termin")
    assert unknown.type == "something_new" and unknown.person is None and unknown["whatever"] == 1


def test_unknown_events_stay_as_received() -> None:
    payload: dict[str, Any] = {"notes": []}
    assert parse_event("call.notes", payload) is payload


def test_typed_results_still_read_like_the_dicts_the_client_returned_before() -> None:
    location = Location.from_wire({"floor_id": "f", "room_id": None})
    assert location == {"floor_id": "f", "room_id": None} and location["floor_id"] == "f"
    assert dict(location) == {"floor_id": "f", "room_id": None} and location.get("reason") is None
    ack: dict[str, Any] = {"ok": True, "outcome": {"knock_id": "k", "room_id": "r", "floor_id": "f", "knocker_id": ANNA,
                                   "outcome": "declined", "by": LEA, "reason": None}}
    outcome = KnockOutcome.from_wire(ack["outcome"]).with_compat(ack)
    assert outcome.outcome == "declined" and outcome["outcome"]["outcome"] == "declined"
    presence = Presence.from_wire({"status": "busy", "text": "x"})
    assert presence == Presence("busy", "x") and hash(presence) == hash(Presence("busy", "x"))
    assert presence != Presence("busy", "y") and presence != Location("f", None)
