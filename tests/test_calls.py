"""The pure call book: room calls, direct rings, relay rule, notes."""

from __future__ import annotations

import pytest

from rooms.actors import Actor
from rooms.errors import DomainError, ErrorCode
from signalling.calls import CallBook, CallKind, RingOutcome, Topology

BEN = Actor("ben", "bergheim", "Ben")
LEA = Actor("lea", "bergheim", "Lea")


def refused(excinfo: pytest.ExceptionInfo[DomainError]) -> tuple[ErrorCode, str | None]:
    return excinfo.value.code, excinfo.value.detail


# ------------------------------------------------------------------ room calls


def test_first_joiner_creates_the_room_call_and_others_join_it() -> None:
    book = CallBook()
    call, created, left = book.join_room_call("ben", "r1", now=1)
    assert created and left is None
    assert call.kind is CallKind.ROOM and call.room_id == "r1" and call.members == {"ben"}
    assert call.topology is Topology.MESH and call.created_at == 1
    again, created2, _ = book.join_room_call("lea", "r1", now=2)
    assert not created2 and again.id == call.id and again.members == {"ben", "lea"}
    assert book.members(call.id) == {"ben", "lea"}
    assert book.call_of("lea") == again and book.room_call("r1") == again


def test_a_room_has_at_most_one_call() -> None:
    book = CallBook()
    ids = {book.join_room_call(u, "r1", now=0).call.id for u in ("a", "b", "c")}
    assert len(ids) == 1 and len(book.calls()) == 1
    assert book.join_room_call("d", "r2", now=0).call.id not in ids
    assert len(book.calls()) == 2


def test_joining_twice_is_idempotent() -> None:
    book = CallBook()
    first = book.join_room_call("ben", "r1", now=0).call
    call, created, left = book.join_room_call("ben", "r1", now=5)
    assert call == first and not created and left is None


def test_explicit_call_id_is_used_and_a_taken_id_is_refused() -> None:
    book = CallBook()
    assert book.join_room_call("ben", "r1", now=0, call_id="c-1").call.id == "c-1"
    with pytest.raises(DomainError) as exc:
        book.join_room_call("lea", "r2", now=0, call_id="c-1")
    assert refused(exc) == (ErrorCode.CONFLICT, "call_id_taken")


def test_a_user_is_in_one_call_at_a_time_and_joining_another_leaves_the_first() -> None:
    book = CallBook()
    book.join_room_call("ben", "r1", now=0)
    book.join_room_call("lea", "r1", now=0)
    call2, created, left = book.join_room_call("ben", "r2", now=3)
    assert created and left is not None
    assert left.room_id == "r1" and left.members == {"lea"} and not left.ended
    assert book.call_of("ben") == call2
    assert book.room_call("r1").members == {"lea"}  # type: ignore[union-attr]


def test_moving_out_of_a_call_alone_ends_it() -> None:
    book = CallBook()
    first = book.join_room_call("ben", "r1", now=0).call
    _, _, left = book.join_room_call("ben", "r2", now=4)
    assert left is not None and left.ended and left.ended_at == 4 and left.members == frozenset()
    assert book.room_call("r1") is None
    with pytest.raises(DomainError) as exc:
        book.call(first.id)
    assert refused(exc)[0] is ErrorCode.NOT_FOUND


def test_mesh_limit_refuses_past_max_mesh_without_an_sfu() -> None:
    book = CallBook(max_mesh=3)
    for user in ("a", "b", "c"):
        book.join_room_call(user, "r1", now=0)
    book.join_room_call("d", "r2", now=0)
    with pytest.raises(DomainError) as exc:
        book.join_room_call("d", "r1", now=1)
    assert refused(exc) == (ErrorCode.CALL_FULL, None)
    assert exc.value.extra == {"max_mesh": 3}
    # A refused join leaves the user where they were.
    assert book.call_of("d").room_id == "r2"  # type: ignore[union-attr]
    book.leave("c", now=2)
    assert book.join_room_call("d", "r1", now=3).call.members == {"a", "b", "d"}


def test_default_mesh_limit_is_six() -> None:
    book = CallBook()
    for i in range(6):
        book.join_room_call(f"u{i}", "r1", now=0)
    with pytest.raises(DomainError) as exc:
        book.join_room_call("u6", "r1", now=0)
    assert refused(exc) == (ErrorCode.CALL_FULL, None)


def test_with_an_sfu_the_call_grows_past_the_mesh_and_switches_topology() -> None:
    book = CallBook(max_mesh=2, sfu=True)
    book.join_room_call("a", "r1", now=0)
    assert book.join_room_call("b", "r1", now=0).call.topology is Topology.MESH
    call = book.join_room_call("c", "r1", now=0).call
    assert call.topology is Topology.SFU and call.members == {"a", "b", "c"}
    assert book.leave("c", now=1).topology is Topology.SFU  # type: ignore[union-attr]


def test_max_mesh_below_two_is_a_configuration_error() -> None:
    with pytest.raises(ValueError):
        CallBook(max_mesh=1)


def test_leaving_tells_the_rest_and_the_last_one_out_ends_the_room_call() -> None:
    book = CallBook()
    call = book.join_room_call("ben", "r1", now=0).call
    book.join_room_call("lea", "r1", now=0)
    after = book.leave("ben", now=1)
    assert after is not None and after.members == {"lea"} and not after.ended
    assert book.call_of("ben") is None
    last = book.leave("lea", now=2)
    assert last is not None and last.ended and last.id == call.id
    assert book.room_call("r1") is None and book.calls() == []
    assert book.leave("lea", now=3) is None


def test_a_restarted_room_call_gets_a_new_id() -> None:
    book = CallBook()
    first = book.join_room_call("ben", "r1", now=0).call
    book.leave("ben", now=1)
    assert book.join_room_call("ben", "r1", now=2).call.id != first.id


def test_leaving_the_room_leaves_its_call_but_not_a_direct_call() -> None:
    book = CallBook()
    book.join_room_call("ben", "r1", now=0)
    book.join_room_call("lea", "r1", now=0)
    assert book.leave_room("ben", "r2", now=1) is None
    assert book.leave_room("ben", "r1", now=1).members == {"lea"}  # type: ignore[union-attr]
    book.ring("g1", BEN, "lea", callee_dnd=False, now=2)
    book.answer("g1", "lea", True, now=3)
    assert book.leave_room("lea", "r1", now=4) is None
    assert book.call_of("lea").kind is CallKind.DIRECT  # type: ignore[union-attr]


def test_unknown_call_is_not_found() -> None:
    with pytest.raises(DomainError) as exc:
        CallBook().members("nope")
    assert refused(exc)[0] is ErrorCode.NOT_FOUND


# ------------------------------------------------------------------ relay


def test_relay_only_between_two_members_of_the_same_call() -> None:
    book = CallBook()
    for user in ("ben", "lea"):
        book.join_room_call(user, "r1", now=0)
    book.join_room_call("jonas", "r2", now=0)
    assert book.may_relay("ben", "lea") and book.may_relay("lea", "ben")
    book.check_relay("ben", "lea")
    assert not book.may_relay("ben", "jonas")  # another call
    assert not book.may_relay("ben", "outsider")  # in no call
    assert not book.may_relay("outsider", "ben")
    assert not book.may_relay("ben", "ben")  # self
    for sender, recipient, detail in [
        ("ben", "jonas", "not_in_call"),
        ("outsider", "ben", "not_in_call"),
        ("ben", "ben", "self"),
        ("nobody", "nobody", "self"),
    ]:
        with pytest.raises(DomainError) as exc:
            book.check_relay(sender, recipient)
        expected = (ErrorCode.FORBIDDEN, "self") if detail == "self" else (ErrorCode.NOT_IN_CALL, None)
        assert refused(exc) == expected


def test_relay_stops_when_a_member_leaves() -> None:
    book = CallBook()
    for user in ("ben", "lea", "jonas"):
        book.join_room_call(user, "r1", now=0)
    book.leave("lea", now=1)
    assert not book.may_relay("ben", "lea") and book.may_relay("ben", "jonas")


# ------------------------------------------------------------------ rings


def test_ring_is_pending_with_its_expiry() -> None:
    book = CallBook(ring_timeout=20)
    ring = book.ring("g1", BEN, "lea", callee_dnd=False, now=10)
    assert ring.expires_at == 30 and ring.caller == BEN and ring.callee == "lea"
    assert len(book) == 1 and book.rings_for("lea") == [ring] and book.rings_by("ben") == [ring]
    assert ring.to_wire()["caller"]["user_id"] == "ben"


def test_default_ring_timeout_is_thirty_seconds() -> None:
    assert CallBook().ring("g1", BEN, "lea", callee_dnd=False, now=0).expires_at == 30


def test_ringing_yourself_is_refused() -> None:
    with pytest.raises(DomainError) as exc:
        CallBook().ring("g1", BEN, "ben", callee_dnd=False, now=0)
    assert refused(exc) == (ErrorCode.INVALID_PAYLOAD, "cannot_ring_yourself")


def test_ringing_the_same_callee_twice_is_refused_until_resolved() -> None:
    book = CallBook()
    book.ring("g1", BEN, "lea", callee_dnd=False, now=0)
    with pytest.raises(DomainError) as exc:
        book.ring("g2", BEN, "lea", callee_dnd=False, now=1)
    assert refused(exc) == (ErrorCode.CONFLICT, "already_ringing")
    book.ring("g3", BEN, "jonas", callee_dnd=False, now=1)  # another callee is fine
    book.ring("g4", LEA, "ben", callee_dnd=False, now=1)  # so is the other direction
    book.cancel("g1", "ben", now=2)
    book.ring("g5", BEN, "lea", callee_dnd=False, now=3)


def test_a_reused_ring_id_is_refused() -> None:
    book = CallBook()
    book.ring("g1", BEN, "lea", callee_dnd=False, now=0)
    book.cancel("g1", "ben", now=1)
    with pytest.raises(DomainError) as exc:
        book.ring("g1", BEN, "jonas", callee_dnd=False, now=2)
    assert refused(exc) == (ErrorCode.CONFLICT, "ring_id_taken")


def test_ringing_someone_already_in_your_call_is_refused() -> None:
    book = CallBook()
    book.join_room_call("ben", "r1", now=0)
    book.join_room_call("lea", "r1", now=0)
    with pytest.raises(DomainError) as exc:
        book.ring("g1", BEN, "lea", callee_dnd=False, now=0)
    assert refused(exc) == (ErrorCode.CONFLICT, "already_in_call")


def test_accepting_makes_a_direct_call_with_both() -> None:
    book = CallBook()
    book.ring("g1", BEN, "lea", callee_dnd=False, now=0)
    res = book.answer("g1", "lea", True, now=5)
    assert res.outcome is RingOutcome.ACCEPTED and res.by == "lea" and res.at == 5
    assert res.call is not None and res.call.kind is CallKind.DIRECT and res.call.room_id is None
    assert res.call.members == {"ben", "lea"} and res.left == ()
    assert book.call_of("ben") == book.call_of("lea") == res.call
    assert book.may_relay("ben", "lea")
    assert len(book) == 0 and res.to_wire()["call_id"] == res.call.id


def test_accepting_leaves_the_calls_both_parties_were_in() -> None:
    book = CallBook()
    for user in ("ben", "jonas"):
        book.join_room_call(user, "r1", now=0)
    lea_call = book.join_room_call("lea", "r2", now=0).call
    book.ring("g1", BEN, "lea", callee_dnd=False, now=1)
    res = book.answer("g1", "lea", True, now=2)
    left = {c.room_id: c for c in res.left}
    assert left["r1"].members == {"jonas"} and not left["r1"].ended
    assert left["r2"].id == lea_call.id and left["r2"].ended
    assert book.room_call("r2") is None


def test_accepting_while_both_are_in_the_same_room_call_reports_it_once() -> None:
    book = CallBook()
    book.join_room_call("ben", "r1", now=0)
    book.join_room_call("jonas", "r1", now=0)
    book.ring("g1", BEN, "lea", callee_dnd=False, now=1)
    book.join_room_call("lea", "r1", now=2)  # she joins the room call while it rings
    res = book.answer("g1", "lea", True, now=3)
    assert len(res.left) == 1 and res.left[0].members == {"jonas"}


def test_declining_makes_no_call() -> None:
    book = CallBook()
    book.ring("g1", BEN, "lea", callee_dnd=False, now=0)
    res = book.answer("g1", "lea", False, now=1)
    assert res.outcome is RingOutcome.DECLINED and res.by == "lea" and res.call is None
    assert book.call_of("ben") is None and book.call_of("lea") is None


@pytest.mark.parametrize("first, second", [(True, False), (False, True), (True, True), (False, False)])
def test_the_first_answer_wins_on_all_devices(first: bool, second: bool) -> None:
    book = CallBook()
    book.ring("g1", BEN, "lea", callee_dnd=False, now=0)
    res = book.answer("g1", "lea", first, now=1)  # lea's laptop
    assert res.outcome is (RingOutcome.ACCEPTED if first else RingOutcome.DECLINED)
    with pytest.raises(DomainError) as exc:
        book.answer("g1", "lea", second, now=1)  # lea's phone, a moment later
    assert refused(exc) == (ErrorCode.RING_RESOLVED, None)
    assert (book.call_of("lea") is not None) is first


def test_cancel_then_answer_and_answer_then_cancel() -> None:
    book = CallBook()
    book.ring("g1", BEN, "lea", callee_dnd=False, now=0)
    assert book.cancel("g1", "ben", now=1).outcome is RingOutcome.CANCELLED
    with pytest.raises(DomainError) as exc:
        book.answer("g1", "lea", True, now=2)
    assert refused(exc) == (ErrorCode.RING_RESOLVED, None)
    assert book.call_of("lea") is None

    book.ring("g2", BEN, "lea", callee_dnd=False, now=3)
    book.answer("g2", "lea", True, now=4)
    with pytest.raises(DomainError) as exc:
        book.cancel("g2", "ben", now=4)
    assert refused(exc) == (ErrorCode.RING_RESOLVED, None)


def test_only_the_callee_answers_and_only_the_caller_cancels() -> None:
    book = CallBook()
    book.ring("g1", BEN, "lea", callee_dnd=False, now=0)
    with pytest.raises(DomainError) as exc:
        book.answer("g1", "jonas", True, now=1)
    assert refused(exc) == (ErrorCode.FORBIDDEN, "not_callee")
    with pytest.raises(DomainError) as exc:
        book.cancel("g1", "lea", now=1)
    assert refused(exc) == (ErrorCode.FORBIDDEN, "not_caller")
    assert len(book) == 1


def test_unknown_ring_is_not_found() -> None:
    with pytest.raises(DomainError) as exc:
        CallBook().answer("nope", "lea", True, now=0)
    assert refused(exc)[0] is ErrorCode.NOT_FOUND


def test_unanswered_rings_expire_via_due() -> None:
    book = CallBook(ring_timeout=30)
    book.ring("g1", BEN, "lea", callee_dnd=False, now=0)
    book.ring("g2", LEA, "ben", callee_dnd=False, now=10)
    assert book.due(29.9) == []
    with pytest.raises(DomainError) as exc:
        book.expire("g1", now=29.9)
    assert refused(exc) == (ErrorCode.CONFLICT, "not_due")
    assert [r.id for r in book.due(30)] == ["g1"]
    res = book.expire("g1", now=30)
    assert res.outcome is RingOutcome.EXPIRED and res.by is None
    assert [r.id for r in book.due(45)] == ["g2"]
    with pytest.raises(DomainError) as exc:
        book.answer("g1", "lea", True, now=31)
    assert refused(exc) == (ErrorCode.RING_RESOLVED, None)


def test_an_answer_after_the_deadline_resolves_as_expired() -> None:
    book = CallBook(ring_timeout=30)
    book.ring("g1", BEN, "lea", callee_dnd=False, now=0)
    res = book.answer("g1", "lea", True, now=30)
    assert res.outcome is RingOutcome.EXPIRED and res.call is None
    assert book.call_of("lea") is None and book.due(100) == []


def test_callee_going_away_resolves_their_rings_as_unavailable() -> None:
    book = CallBook()
    book.ring("g1", BEN, "lea", callee_dnd=False, now=0)
    book.ring("g2", Actor("jonas", "m", "Jonas"), "lea", callee_dnd=False, now=0)
    book.ring("g3", LEA, "ben", callee_dnd=False, now=0)
    out = book.callee_unavailable("lea", now=1)
    assert {r.ring.id for r in out} == {"g1", "g2"}
    assert all(r.outcome is RingOutcome.UNAVAILABLE for r in out)
    assert [r.id for r in book.rings_for("ben")] == ["g3"]


def test_caller_going_away_cancels_their_rings() -> None:
    book = CallBook()
    book.ring("g1", BEN, "lea", callee_dnd=False, now=0)
    book.ring("g2", BEN, "jonas", callee_dnd=False, now=0)
    out = book.cancel_all("ben", now=1)
    assert {r.ring.id for r in out} == {"g1", "g2"} and len(book) == 0
    assert all(r.outcome is RingOutcome.CANCELLED and r.by == "ben" for r in out)


def test_leaving_a_direct_call_ends_it_for_both() -> None:
    book = CallBook()
    book.ring("g1", BEN, "lea", callee_dnd=False, now=0)
    call = book.answer("g1", "lea", True, now=1).call
    assert call is not None
    after = book.leave("ben", now=60)
    assert after is not None and after.ended and after.ended_at == 60 and after.members == {"lea"}
    assert book.call_of("lea") is None and book.call_of("ben") is None
    assert not book.may_relay("lea", "ben")
    with pytest.raises(DomainError):
        book.call(call.id)
    assert book.leave("lea", now=61) is None


def test_joining_a_room_call_from_a_direct_call_ends_the_direct_call() -> None:
    book = CallBook()
    book.ring("g1", BEN, "lea", callee_dnd=False, now=0)
    direct = book.answer("g1", "lea", True, now=1).call
    _, _, left = book.join_room_call("lea", "r1", now=2)
    assert left is not None and left.id == direct.id and left.ended  # type: ignore[union-attr]
    assert left.members == {"ben"} and book.call_of("ben") is None


# ------------------------------------------------------------------ do not disturb and notes


def test_a_callee_in_dnd_is_not_rung_and_the_caller_may_leave_a_note() -> None:
    book = CallBook()
    with pytest.raises(DomainError) as exc:
        book.ring("g1", BEN, "lea", callee_dnd=True, now=0)
    assert refused(exc) == (ErrorCode.DO_NOT_DISTURB, None)
    assert len(book) == 0 and book.rings_for("lea") == []
    note = book.leave_note(BEN, "lea", "  Call me about the budget  ", now=1)
    assert note.text == "Call me about the budget" and note.created_at == 1
    assert book.notes_for("lea") == [note]
    assert book.take_notes("lea") == [note]
    assert book.take_notes("lea") == []  # taken once
    assert note.to_wire()["from"]["user_id"] == "ben"


def test_notes_are_bounded_in_length_and_refuse_blank_or_self() -> None:
    book = CallBook(note_max_chars=10)
    book.leave_note(BEN, "lea", "x" * 10, now=0)
    cases = [
        (BEN, "lea", "x" * 11, (ErrorCode.INVALID_PAYLOAD, "text: at most 10 characters")),
        (BEN, "lea", "   ", (ErrorCode.INVALID_PAYLOAD, "empty_note")),
        (BEN, "ben", "hi", (ErrorCode.INVALID_PAYLOAD, "cannot_note_yourself")),
    ]
    for caller, callee, text, expected in cases:
        with pytest.raises(DomainError) as exc:
            book.leave_note(caller, callee, text, now=1)
        assert refused(exc) == expected


def test_at_most_n_callers_may_have_a_note_waiting_and_a_new_note_replaces_the_old() -> None:
    book = CallBook(notes_per_callee=2)
    book.leave_note(BEN, "lea", "first", now=0)
    book.leave_note(BEN, "lea", "second", now=1)  # replaces ben's first note
    book.leave_note(Actor("jonas", "m", "Jonas"), "lea", "hello", now=2)
    with pytest.raises(DomainError) as exc:
        book.leave_note(Actor("mia", "m", "Mia"), "lea", "hi", now=3)
    assert refused(exc) == (ErrorCode.CONFLICT, "note_box_full")
    book.leave_note(BEN, "lea", "third", now=4)  # ben may still update his own
    assert [(n.caller.user_id, n.text) for n in book.take_notes("lea")] == [("jonas", "hello"), ("ben", "third")]
    book.leave_note(Actor("mia", "m", "Mia"), "lea", "hi", now=5)  # the box is empty again


def test_notes_are_kept_per_callee() -> None:
    book = CallBook()
    book.leave_note(BEN, "lea", "for lea", now=0)
    book.leave_note(LEA, "ben", "for ben", now=0)
    assert [n.text for n in book.take_notes("ben")] == ["for ben"]
    assert [n.text for n in book.take_notes("lea")] == ["for lea"]


def test_wire_shapes() -> None:
    book = CallBook()
    call = book.join_room_call("lea", "r1", now=0).call
    book.join_room_call("ben", "r1", now=0)
    wire = book.call(call.id).to_wire()
    assert wire["members"] == ["ben", "lea"] and wire["kind"] == "room" and wire["topology"] == "mesh"
    assert wire["ended"] is False
