"""The pure presence state: sessions, status merge, grace, location, sequence numbers."""

from __future__ import annotations

import pytest

from presence_server.presence.state import PresenceState, Status
from rooms.actors import Actor

ANNA = Actor("anna", "altbach", "Anna")
BEN = Actor("ben", "bergheim", "Ben")
A, B = ANNA.person_id, BEN.person_id


def types(diffs) -> list[tuple[str, int]]:
    return [(d.type, d.seq) for d in diffs]


def test_moves_on_one_floor_carry_consecutive_sequence_numbers() -> None:
    s = PresenceState()
    s.connect("a1", ANNA, 0)
    s.connect("b1", BEN, 0)
    assert types(s.move(A, "f", None)) == [("joined", 1)]
    assert types(s.move(B, "f", "r")) == [("joined", 2)]
    assert types(s.move(A, "f", "r")) == [("moved", 3)]
    assert s.move(A, "f", "r") == []  # same place: nothing happened
    assert s.occupants("r", "f") == 2


def test_changing_floors_leaves_one_and_joins_the_other() -> None:
    s = PresenceState()
    s.connect("a1", ANNA, 0)
    s.move(A, "f1", "r1")
    diffs = s.move(A, "f2", None)
    assert [(d.floor_id, d.type, d.seq) for d in diffs] == [("f1", "left", 2), ("f2", "joined", 1)]
    assert s.occupants("r1", "f1") == 0


def test_a_second_session_inherits_status_and_emits_nothing() -> None:
    s = PresenceState()
    s.connect("a1", ANNA, 0)
    s.move(A, "f", None)
    s.set_status("a1", Status.BUSY, "Sitzung", all_sessions=True)
    assert s.connect("a2", ANNA, 0) == []
    assert s.user(A).status is Status.BUSY and s.user(A).text == "Sitzung"


@pytest.mark.parametrize(
    ("first", "second", "winner"),
    [
        (Status.AWAY, Status.AVAILABLE, Status.AVAILABLE),
        (Status.AVAILABLE, Status.BUSY, Status.BUSY),
        (Status.DO_NOT_DISTURB, Status.BUSY, Status.DO_NOT_DISTURB),
        (Status.AWAY, Status.DO_NOT_DISTURB, Status.DO_NOT_DISTURB),
    ],
)
def test_status_merges_by_priority(first: Status, second: Status, winner: Status) -> None:
    s = PresenceState()
    s.connect("a1", ANNA, 0)
    s.connect("a2", ANNA, 0)
    s.set_status("a1", first, "", all_sessions=False)
    s.set_status("a2", second, "", all_sessions=False)
    assert s.user(A).status is winner


def test_the_most_recent_text_wins_among_equal_statuses() -> None:
    s = PresenceState()
    s.connect("a1", ANNA, 0)
    s.connect("a2", ANNA, 0)
    s.set_status("a1", Status.BUSY, "alt", all_sessions=False)
    s.set_status("a2", Status.BUSY, "neu", all_sessions=False)
    assert s.user(A).text == "neu"


def test_the_last_session_lingers_and_expiry_forgets_the_user() -> None:
    s = PresenceState()
    s.connect("a1", ANNA, 0)
    s.move(A, "f", "r")
    diffs, lingering = s.disconnect("a1", 10.0)
    assert diffs == [] and lingering is not None and lingering.lingering_since == 10.0
    diffs, gone = s.expire(A, 10.0)
    assert types(diffs) == [("left", 2)] and gone is not None
    assert s.user(A) is None and s.occupants("r", "f") == 0


def test_a_stale_expiry_after_a_reconnect_does_nothing() -> None:
    s = PresenceState()
    s.connect("a1", ANNA, 0)
    s.move(A, "f", None)
    s.disconnect("a1", 10.0)
    s.connect("a2", ANNA, 11.0)  # back within grace
    assert s.expire(A, 10.0) == ([], None)
    s.disconnect("a2", 20.0)  # gone again: only the newer linger may expire
    assert s.expire(A, 10.0) == ([], None)
    assert types(s.expire(A, 20.0)[0]) == [("left", 2)]


def test_a_new_token_with_a_new_name_is_shown_as_a_join() -> None:
    s = PresenceState()
    s.connect("a1", ANNA, 0)
    s.move(A, "f", None)
    renamed = Actor("anna", "altbach", "Dr. Anna")
    diffs = s.connect("a2", renamed, 0)
    assert types(diffs) == [("joined", 2)] and diffs[0].data["member"]["name"] == "Dr. Anna"


def test_evacuating_a_room_moves_its_occupants_to_the_hallway() -> None:
    s = PresenceState()
    for sid, actor in (("a1", ANNA), ("b1", BEN)):
        s.connect(sid, actor, 0)
        s.move(actor.person_id, "f", "r")
    diffs = s.evacuate_room("f", "r")
    assert [(d.type, d.data["person"], d.data["room_id"]) for d in diffs] == [("moved", A, None), ("moved", B, None)]
    assert s.occupants("r", "f") == 0


def test_snapshot_and_seq_are_consistent() -> None:
    s = PresenceState()
    s.connect("a1", ANNA, 0)
    s.move(A, "f", "r")
    seq, members = s.snapshot("f")
    assert seq == 1 and members[0]["person"] == A == "altbach/anna" and members[0]["user_id"] == "anna"
    assert members[0]["room_id"] == "r"
    assert s.snapshot("empty") == (0, [])


def test_the_same_subject_in_two_towns_is_two_presences() -> None:
    s = PresenceState()
    altbach, bergheim = Actor("m.mueller", "altbach", "M. Müller"), Actor("m.mueller", "bergheim", "M. Müller")
    s.connect("a1", altbach, 0)
    s.connect("b1", bergheim, 0)
    assert types(s.move(altbach.person_id, "f", "r")) == [("joined", 1)]
    assert types(s.move(bergheim.person_id, "f", "r")) == [("joined", 2)]
    assert s.occupants("r", "f") == 2
    s.set_status("b1", Status.BUSY, "Sitzung", all_sessions=True)
    assert s.user(altbach.person_id).status is Status.AVAILABLE
    s.disconnect("a1", 10.0)
    diffs, gone = s.expire(altbach.person_id, 10.0)
    assert [d.data for d in diffs] == [{"person": "altbach/m.mueller"}] and gone is not None
    _, members = s.snapshot("f")
    assert [(m["person"], m["status"]) for m in members] == [("bergheim/m.mueller", "busy")]
