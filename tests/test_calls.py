"""The pure call book: room calls, direct rings, relay rule, notes."""

from __future__ import annotations

import pytest

from rooms.actors import Actor
from rooms.errors import DomainError, ErrorCode
from rooms.person import PersonId, person_id
from signalling.calls import CallBook, CallKind, RingOutcome, Topology

BEN = Actor("ben", "bergheim", "Ben")
LEA = Actor("lea", "bergheim", "Lea")
JONAS = Actor("jonas", "m", "Jonas")
MIA = Actor("mia", "m", "Mia")
B, L, J = BEN.person_id, LEA.person_id, JONAS.person_id


def p(user_id: str) -> PersonId:
    """A person of Seefeld, for tests that only need someone."""
    return person_id("seefeld", user_id)


def refused(excinfo: pytest.ExceptionInfo[DomainError]) -> tuple[ErrorCode, str | None]:
    return excinfo.value.code, excinfo.value.detail


# ------------------------------------------------------------------ room calls


def test_first_joiner_creates_the_room_call_and_others_join_it() -> None:
    book = CallBook()
    call, created, left = book.join_room_call(B, "r1", now=1)
    assert created and left is None
    assert call.kind is CallKind.ROOM and call.room_id == "r1" and call.members == {B}
    assert call.topology is Topology.MESH and call.created_at == 1
    again, created2, _ = book.join_room_call(L, "r1", now=2)
    assert not created2 and again.id == call.id and again.members == {B, L}
    assert book.members(call.id) == {B, L}
    assert book.call_of(L) == again and book.room_call("r1") == again


def test_a_room_has_at_most_one_call() -> None:
    book = CallBook()
    ids = {book.join_room_call(u, "r1", now=0).call.id for u in (p("a"), p("b"), p("c"))}
    assert len(ids) == 1 and len(book.calls()) == 1
    assert book.join_room_call(p("d"), "r2", now=0).call.id not in ids
    assert len(book.calls()) == 2


def test_joining_twice_is_idempotent() -> None:
    book = CallBook()
    first = book.join_room_call(B, "r1", now=0).call
    call, created, left = book.join_room_call(B, "r1", now=5)
    assert call == first and not created and left is None


def test_explicit_call_id_is_used_and_a_taken_id_is_refused() -> None:
    book = CallBook()
    assert book.join_room_call(B, "r1", now=0, call_id="c-1").call.id == "c-1"
    with pytest.raises(DomainError) as exc:
        book.join_room_call(L, "r2", now=0, call_id="c-1")
    assert refused(exc) == (ErrorCode.CONFLICT, "call_id_taken")


def test_a_user_is_in_one_call_at_a_time_and_joining_another_leaves_the_first() -> None:
    book = CallBook()
    book.join_room_call(B, "r1", now=0)
    book.join_room_call(L, "r1", now=0)
    call2, created, left = book.join_room_call(B, "r2", now=3)
    assert created and left is not None
    assert left.room_id == "r1" and left.members == {L} and not left.ended
    assert book.call_of(B) == call2
    assert book.room_call("r1").members == {L}  # type: ignore[union-attr]


def test_moving_out_of_a_call_alone_ends_it() -> None:
    book = CallBook()
    first = book.join_room_call(B, "r1", now=0).call
    _, _, left = book.join_room_call(B, "r2", now=4)
    assert left is not None and left.ended and left.ended_at == 4 and left.members == frozenset()
    assert book.room_call("r1") is None
    with pytest.raises(DomainError) as exc:
        book.call(first.id)
    assert refused(exc)[0] is ErrorCode.NOT_FOUND


def test_mesh_limit_refuses_past_max_mesh_without_an_sfu() -> None:
    book = CallBook(max_mesh=3)
    for user in (p("a"), p("b"), p("c")):
        book.join_room_call(user, "r1", now=0)
    book.join_room_call(p("d"), "r2", now=0)
    with pytest.raises(DomainError) as exc:
        book.join_room_call(p("d"), "r1", now=1)
    assert refused(exc) == (ErrorCode.CALL_FULL, None)
    assert exc.value.extra == {"max_mesh": 3}
    # A refused join leaves the user where they were.
    assert book.call_of(p("d")).room_id == "r2"  # type: ignore[union-attr]
    book.leave(p("c"), now=2)
    assert book.join_room_call(p("d"), "r1", now=3).call.members == {p("a"), p("b"), p("d")}


def test_default_mesh_limit_is_six() -> None:
    book = CallBook()
    for i in range(6):
        book.join_room_call(p(f"u{i}"), "r1", now=0)
    with pytest.raises(DomainError) as exc:
        book.join_room_call(p("u6"), "r1", now=0)
    assert refused(exc) == (ErrorCode.CALL_FULL, None)


def test_with_an_sfu_the_call_grows_past_the_mesh_and_switches_topology() -> None:
    book = CallBook(max_mesh=2, sfu=True)
    book.join_room_call(p("a"), "r1", now=0)
    assert book.join_room_call(p("b"), "r1", now=0).call.topology is Topology.MESH
    call = book.join_room_call(p("c"), "r1", now=0).call
    assert call.topology is Topology.SFU and call.members == {p("a"), p("b"), p("c")}
    assert book.leave(p("c"), now=1).topology is Topology.SFU  # type: ignore[union-attr]


def test_max_mesh_below_two_is_a_configuration_error() -> None:
    with pytest.raises(ValueError):
        CallBook(max_mesh=1)


def test_leaving_tells_the_rest_and_the_last_one_out_ends_the_room_call() -> None:
    book = CallBook()
    call = book.join_room_call(B, "r1", now=0).call
    book.join_room_call(L, "r1", now=0)
    after = book.leave(B, now=1)
    assert after is not None and after.members == {L} and not after.ended
    assert book.call_of(B) is None
    last = book.leave(L, now=2)
    assert last is not None and last.ended and last.id == call.id
    assert book.room_call("r1") is None and book.calls() == []
    assert book.leave(L, now=3) is None


def test_a_restarted_room_call_gets_a_new_id() -> None:
    book = CallBook()
    first = book.join_room_call(B, "r1", now=0).call
    book.leave(B, now=1)
    assert book.join_room_call(B, "r1", now=2).call.id != first.id


def test_leaving_the_room_leaves_its_call_but_not_a_direct_call() -> None:
    book = CallBook()
    book.join_room_call(B, "r1", now=0)
    book.join_room_call(L, "r1", now=0)
    assert book.leave_room(B, "r2", now=1) is None
    assert book.leave_room(B, "r1", now=1).members == {L}  # type: ignore[union-attr]
    book.ring("g1", BEN, L, callee_dnd=False, now=2)
    book.answer("g1", L, True, now=3)
    assert book.leave_room(L, "r1", now=4) is None
    assert book.call_of(L).kind is CallKind.DIRECT  # type: ignore[union-attr]


def test_unknown_call_is_not_found() -> None:
    with pytest.raises(DomainError) as exc:
        CallBook().members("nope")
    assert refused(exc)[0] is ErrorCode.NOT_FOUND


# ------------------------------------------------------------------ relay


def test_relay_only_between_two_members_of_the_same_call() -> None:
    book = CallBook()
    for user in (B, L):
        book.join_room_call(user, "r1", now=0)
    book.join_room_call(J, "r2", now=0)
    assert book.may_relay(B, L) and book.may_relay(L, B)
    book.check_relay(B, L)
    assert not book.may_relay(B, J)  # another call
    assert not book.may_relay(B, p("outsider"))  # in no call
    assert not book.may_relay(p("outsider"), B)
    assert not book.may_relay(B, B)  # self
    for sender, recipient, detail in [
        (B, J, "not_in_call"),
        (p("outsider"), B, "not_in_call"),
        (B, B, "self"),
        (p("nobody"), p("nobody"), "self"),
    ]:
        with pytest.raises(DomainError) as exc:
            book.check_relay(sender, recipient)
        expected = (ErrorCode.FORBIDDEN, "self") if detail == "self" else (ErrorCode.NOT_IN_CALL, None)
        assert refused(exc) == expected


def test_relay_stops_when_a_member_leaves() -> None:
    book = CallBook()
    for user in (B, L, J):
        book.join_room_call(user, "r1", now=0)
    book.leave(L, now=1)
    assert not book.may_relay(B, L) and book.may_relay(B, J)


# ------------------------------------------------------------------ rings


def test_ring_is_pending_with_its_expiry() -> None:
    book = CallBook(ring_timeout=20)
    ring = book.ring("g1", BEN, L, callee_dnd=False, now=10)
    assert ring.expires_at == 30 and ring.caller == BEN and ring.callee == L
    assert len(book) == 1 and book.rings_for(L) == [ring] and book.rings_by(B) == [ring]
    assert ring.to_wire()["caller"]["person"] == B and ring.to_wire()["caller"]["user_id"] == "ben"
    assert ring.to_wire()["callee_id"] == L == "bergheim/lea"


def test_the_same_subject_in_another_town_is_another_person() -> None:
    book = CallBook()
    altbach_ben = person_id("altbach", "ben")
    book.ring("g1", BEN, altbach_ben, callee_dnd=False, now=0)  # not "ringing yourself"
    assert book.rings_for(altbach_ben) != [] and book.rings_for(B) == []
    with pytest.raises(DomainError) as exc:
        book.answer("g1", B, True, now=1)  # the caller's sub is the callee's sub, but not the callee
    assert refused(exc) == (ErrorCode.FORBIDDEN, "not_callee")
    res = book.answer("g1", altbach_ben, True, now=1)
    assert res.call is not None and res.call.members == {B, altbach_ben}
    assert book.may_relay(B, altbach_ben) and not book.may_relay(B, B)


def test_default_ring_timeout_is_thirty_seconds() -> None:
    assert CallBook().ring("g1", BEN, L, callee_dnd=False, now=0).expires_at == 30


def test_ringing_yourself_is_refused() -> None:
    with pytest.raises(DomainError) as exc:
        CallBook().ring("g1", BEN, B, callee_dnd=False, now=0)
    assert refused(exc) == (ErrorCode.INVALID_PAYLOAD, "cannot_ring_yourself")


def test_ringing_the_same_callee_twice_is_refused_until_resolved() -> None:
    book = CallBook()
    book.ring("g1", BEN, L, callee_dnd=False, now=0)
    with pytest.raises(DomainError) as exc:
        book.ring("g2", BEN, L, callee_dnd=False, now=1)
    assert refused(exc) == (ErrorCode.CONFLICT, "already_ringing")
    assert exc.value.extra == {"reason": "already_ringing"}  # machine-readable, on the wire
    assert exc.value.to_wire()["reason"] == "already_ringing"
    book.ring("g3", BEN, J, callee_dnd=False, now=1)  # another callee is fine
    book.ring("g4", LEA, B, callee_dnd=False, now=1)  # so is the other direction
    book.cancel("g1", B, now=2)
    book.ring("g5", BEN, L, callee_dnd=False, now=3)


def test_a_reused_ring_id_is_refused() -> None:
    book = CallBook()
    book.ring("g1", BEN, L, callee_dnd=False, now=0)
    book.cancel("g1", B, now=1)
    with pytest.raises(DomainError) as exc:
        book.ring("g1", BEN, J, callee_dnd=False, now=2)
    assert refused(exc) == (ErrorCode.CONFLICT, "ring_id_taken")


def test_ringing_someone_already_in_your_call_is_refused() -> None:
    book = CallBook()
    book.join_room_call(B, "r1", now=0)
    book.join_room_call(L, "r1", now=0)
    with pytest.raises(DomainError) as exc:
        book.ring("g1", BEN, L, callee_dnd=False, now=0)
    assert refused(exc) == (ErrorCode.CONFLICT, "already_in_call")
    assert exc.value.extra == {"reason": "already_in_call"}
    assert exc.value.to_wire()["reason"] == "already_in_call"


def test_accepting_makes_a_direct_call_with_both() -> None:
    book = CallBook()
    book.ring("g1", BEN, L, callee_dnd=False, now=0)
    res = book.answer("g1", L, True, now=5)
    assert res.outcome is RingOutcome.ACCEPTED and res.by == L and res.at == 5
    assert res.call is not None and res.call.kind is CallKind.DIRECT and res.call.room_id is None
    assert res.call.members == {B, L} and res.left == ()
    assert book.call_of(B) == book.call_of(L) == res.call
    assert book.may_relay(B, L)
    assert len(book) == 0 and res.to_wire()["call_id"] == res.call.id
    wire = res.to_wire()
    assert (wire["caller_id"], wire["callee_id"], wire["by"]) == ("bergheim/ben", "bergheim/lea", "bergheim/lea")


def test_accepting_leaves_the_calls_both_parties_were_in() -> None:
    book = CallBook()
    for user in (B, J):
        book.join_room_call(user, "r1", now=0)
    lea_call = book.join_room_call(L, "r2", now=0).call
    book.ring("g1", BEN, L, callee_dnd=False, now=1)
    res = book.answer("g1", L, True, now=2)
    left = {c.room_id: c for c in res.left}
    assert left["r1"].members == {J} and not left["r1"].ended
    assert left["r2"].id == lea_call.id and left["r2"].ended
    assert book.room_call("r2") is None


def test_accepting_while_both_are_in_the_same_room_call_reports_it_once() -> None:
    book = CallBook()
    book.join_room_call(B, "r1", now=0)
    book.join_room_call(J, "r1", now=0)
    book.ring("g1", BEN, L, callee_dnd=False, now=1)
    book.join_room_call(L, "r1", now=2)  # she joins the room call while it rings
    res = book.answer("g1", L, True, now=3)
    assert len(res.left) == 1 and res.left[0].members == {J}


def test_declining_makes_no_call() -> None:
    book = CallBook()
    book.ring("g1", BEN, L, callee_dnd=False, now=0)
    res = book.answer("g1", L, False, now=1)
    assert res.outcome is RingOutcome.DECLINED and res.by == L and res.call is None
    assert book.call_of(B) is None and book.call_of(L) is None


@pytest.mark.parametrize("first, second", [(True, False), (False, True), (True, True), (False, False)])
def test_the_first_answer_wins_on_all_devices(first: bool, second: bool) -> None:
    book = CallBook()
    book.ring("g1", BEN, L, callee_dnd=False, now=0)
    res = book.answer("g1", L, first, now=1)  # lea's laptop
    assert res.outcome is (RingOutcome.ACCEPTED if first else RingOutcome.DECLINED)
    with pytest.raises(DomainError) as exc:
        book.answer("g1", L, second, now=1)  # lea's phone, a moment later
    assert refused(exc) == (ErrorCode.RING_RESOLVED, None)
    assert (book.call_of(L) is not None) is first


def test_cancel_then_answer_and_answer_then_cancel() -> None:
    book = CallBook()
    book.ring("g1", BEN, L, callee_dnd=False, now=0)
    assert book.cancel("g1", B, now=1).outcome is RingOutcome.CANCELLED
    with pytest.raises(DomainError) as exc:
        book.answer("g1", L, True, now=2)
    assert refused(exc) == (ErrorCode.RING_RESOLVED, None)
    assert book.call_of(L) is None

    book.ring("g2", BEN, L, callee_dnd=False, now=3)
    book.answer("g2", L, True, now=4)
    with pytest.raises(DomainError) as exc:
        book.cancel("g2", B, now=4)
    assert refused(exc) == (ErrorCode.RING_RESOLVED, None)


def test_only_the_callee_answers_and_only_the_caller_cancels() -> None:
    book = CallBook()
    book.ring("g1", BEN, L, callee_dnd=False, now=0)
    with pytest.raises(DomainError) as exc:
        book.answer("g1", J, True, now=1)
    assert refused(exc) == (ErrorCode.FORBIDDEN, "not_callee")
    with pytest.raises(DomainError) as exc:
        book.cancel("g1", L, now=1)
    assert refused(exc) == (ErrorCode.FORBIDDEN, "not_caller")
    assert len(book) == 1


def test_unknown_ring_is_not_found() -> None:
    with pytest.raises(DomainError) as exc:
        CallBook().answer("nope", L, True, now=0)
    assert refused(exc)[0] is ErrorCode.NOT_FOUND


def test_unanswered_rings_expire_via_due() -> None:
    book = CallBook(ring_timeout=30)
    book.ring("g1", BEN, L, callee_dnd=False, now=0)
    book.ring("g2", LEA, B, callee_dnd=False, now=10)
    assert book.due(29.9) == []
    with pytest.raises(DomainError) as exc:
        book.expire("g1", now=29.9)
    assert refused(exc) == (ErrorCode.CONFLICT, "not_due")
    assert [r.id for r in book.due(30)] == ["g1"]
    res = book.expire("g1", now=30)
    assert res.outcome is RingOutcome.EXPIRED and res.by is None
    assert [r.id for r in book.due(45)] == ["g2"]
    with pytest.raises(DomainError) as exc:
        book.answer("g1", L, True, now=31)
    assert refused(exc) == (ErrorCode.RING_RESOLVED, None)


def test_an_answer_after_the_deadline_resolves_as_expired() -> None:
    book = CallBook(ring_timeout=30)
    book.ring("g1", BEN, L, callee_dnd=False, now=0)
    res = book.answer("g1", L, True, now=30)
    assert res.outcome is RingOutcome.EXPIRED and res.call is None
    assert book.call_of(L) is None and book.due(100) == []


def test_callee_going_away_resolves_their_rings_as_unavailable() -> None:
    book = CallBook()
    book.ring("g1", BEN, L, callee_dnd=False, now=0)
    book.ring("g2", JONAS, L, callee_dnd=False, now=0)
    book.ring("g3", LEA, B, callee_dnd=False, now=0)
    out = book.callee_unavailable(L, now=1)
    assert {r.ring.id for r in out} == {"g1", "g2"}
    assert all(r.outcome is RingOutcome.UNAVAILABLE for r in out)
    assert [r.id for r in book.rings_for(B)] == ["g3"]


def test_caller_going_away_cancels_their_rings() -> None:
    book = CallBook()
    book.ring("g1", BEN, L, callee_dnd=False, now=0)
    book.ring("g2", BEN, J, callee_dnd=False, now=0)
    out = book.cancel_all(B, now=1)
    assert {r.ring.id for r in out} == {"g1", "g2"} and len(book) == 0
    assert all(r.outcome is RingOutcome.CANCELLED and r.by == B for r in out)


def test_leaving_a_direct_call_ends_it_for_both() -> None:
    book = CallBook()
    book.ring("g1", BEN, L, callee_dnd=False, now=0)
    call = book.answer("g1", L, True, now=1).call
    assert call is not None
    after = book.leave(B, now=60)
    assert after is not None and after.ended and after.ended_at == 60 and after.members == {L}
    assert book.call_of(L) is None and book.call_of(B) is None
    assert not book.may_relay(L, B)
    with pytest.raises(DomainError):
        book.call(call.id)
    assert book.leave(L, now=61) is None


def test_joining_a_room_call_from_a_direct_call_ends_the_direct_call() -> None:
    book = CallBook()
    book.ring("g1", BEN, L, callee_dnd=False, now=0)
    direct = book.answer("g1", L, True, now=1).call
    _, _, left = book.join_room_call(L, "r1", now=2)
    assert left is not None and left.id == direct.id and left.ended  # type: ignore[union-attr]
    assert left.members == {B} and book.call_of(B) is None


# ------------------------------------------------------------------ do not disturb and notes


def test_a_callee_in_dnd_is_not_rung_and_the_caller_may_leave_a_note() -> None:
    book = CallBook()
    with pytest.raises(DomainError) as exc:
        book.ring("g1", BEN, L, callee_dnd=True, now=0)
    assert refused(exc) == (ErrorCode.DO_NOT_DISTURB, None)
    assert len(book) == 0 and book.rings_for(L) == []
    note = book.leave_note(BEN, L, "  Call me about the budget  ", now=1)
    assert note.text == "Call me about the budget" and note.created_at == 1
    assert book.notes_for(L) == [note]
    assert book.take_notes(L) == [note]
    assert book.take_notes(L) == []  # taken once
    assert note.to_wire()["from"]["person"] == B and note.to_wire()["from"]["user_id"] == "ben"


def test_notes_are_bounded_in_length_and_refuse_blank_or_self() -> None:
    book = CallBook(note_max_chars=10)
    book.leave_note(BEN, L, "x" * 10, now=0)
    cases = [
        (BEN, L, "x" * 11, (ErrorCode.INVALID_PAYLOAD, "text: at most 10 characters")),
        (BEN, L, "   ", (ErrorCode.INVALID_PAYLOAD, "empty_note")),
        (BEN, B, "hi", (ErrorCode.INVALID_PAYLOAD, "cannot_note_yourself")),
    ]
    for caller, callee, text, expected in cases:
        with pytest.raises(DomainError) as exc:
            book.leave_note(caller, callee, text, now=1)
        assert refused(exc) == expected


def test_at_most_n_callers_may_have_a_note_waiting_and_a_new_note_replaces_the_old() -> None:
    book = CallBook(notes_per_callee=2)
    book.leave_note(BEN, L, "first", now=0)
    book.leave_note(BEN, L, "second", now=1)  # replaces ben's first note
    book.leave_note(JONAS, L, "hello", now=2)
    with pytest.raises(DomainError) as exc:
        book.leave_note(MIA, L, "hi", now=3)
    assert refused(exc) == (ErrorCode.CONFLICT, "note_box_full")
    book.leave_note(BEN, L, "third", now=4)  # ben may still update his own
    assert [(n.caller.person_id, n.text) for n in book.take_notes(L)] == [(J, "hello"), (B, "third")]
    book.leave_note(MIA, L, "hi", now=5)  # the box is empty again


def test_notes_are_kept_per_callee() -> None:
    book = CallBook()
    book.leave_note(BEN, L, "for lea", now=0)
    book.leave_note(LEA, B, "for ben", now=0)
    assert [n.text for n in book.take_notes(B)] == ["for ben"]
    assert [n.text for n in book.take_notes(L)] == ["for lea"]


def test_wire_shapes() -> None:
    book = CallBook()
    call = book.join_room_call(L, "r1", now=0).call
    book.join_room_call(B, "r1", now=0)
    wire = book.call(call.id).to_wire()
    assert wire["members"] == ["bergheim/ben", "bergheim/lea"] and wire["kind"] == "room" and wire["topology"] == "mesh"
    assert wire["ended"] is False
