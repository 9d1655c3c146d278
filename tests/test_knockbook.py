"""The pure knock state machine."""

from __future__ import annotations

import pytest

from rooms.actors import Actor
from rooms.errors import DomainError, ErrorCode
from rooms.knocks import KnockBook, KnockOutcome

BEN = Actor("ben", "bergheim", "Ben")


def open_knock(book: KnockBook, knock_id: str = "k1", now: float = 0.0):
    return book.open(knock_id, BEN, room_id="r", floor_id="f", recipients=frozenset({"lea"}),
                     to_owners=False, message="", now=now)


def code_of(excinfo: pytest.ExceptionInfo[DomainError]) -> ErrorCode:
    return excinfo.value.code


def test_the_first_resolution_wins_and_every_later_one_is_refused() -> None:
    book = KnockBook(timeout=30, cooldown=20)
    open_knock(book)
    resolution = book.resolve("k1", KnockOutcome.ADMITTED, now=1, by="lea")
    assert resolution.outcome is KnockOutcome.ADMITTED and resolution.by == "lea"
    for outcome in KnockOutcome:
        with pytest.raises(DomainError) as refused:
            book.resolve("k1", outcome, now=1, by="jonas")
        assert code_of(refused) is ErrorCode.KNOCK_RESOLVED
    assert len(book) == 0


def test_an_unknown_knock_is_not_found() -> None:
    with pytest.raises(DomainError) as refused:
        KnockBook(timeout=30, cooldown=20).get("nope")
    assert code_of(refused) is ErrorCode.NOT_FOUND


def test_one_pending_knock_per_knocker() -> None:
    book = KnockBook(timeout=30, cooldown=20)
    open_knock(book)
    with pytest.raises(DomainError) as refused:
        open_knock(book, "k2")
    assert code_of(refused) is ErrorCode.ALREADY_KNOCKING
    book.resolve("k1", KnockOutcome.CANCELLED, now=1, by="ben")
    open_knock(book, "k2")


def test_a_human_decline_starts_a_cooldown_for_that_room_only() -> None:
    book = KnockBook(timeout=30, cooldown=20)
    open_knock(book)
    book.resolve("k1", KnockOutcome.DECLINED, now=100, by="lea")
    with pytest.raises(DomainError) as refused:
        open_knock(book, "k2", now=110)
    assert code_of(refused) is ErrorCode.KNOCK_COOLDOWN and refused.value.extra["retry_after"] == 10
    book.open("k3", BEN, room_id="other", floor_id="f", recipients=frozenset({"x"}), to_owners=False,
              message="", now=110)
    book.resolve("k3", KnockOutcome.CANCELLED, now=111, by="ben")
    open_knock(book, "k4", now=120)  # cooldown over


def test_a_decline_without_a_person_sets_no_cooldown() -> None:
    book = KnockBook(timeout=30, cooldown=20)
    open_knock(book)
    book.resolve("k1", KnockOutcome.DECLINED, now=1, reason="room_empty")
    open_knock(book, "k2", now=2)


def test_due_lists_knocks_past_their_expiry() -> None:
    book = KnockBook(timeout=30, cooldown=20)
    open_knock(book, now=0)
    assert book.due(29.9) == []
    assert [k.id for k in book.due(30)] == ["k1"]


def test_a_claimed_knock_refuses_other_answers_until_resolved_or_released() -> None:
    book = KnockBook(timeout=30, cooldown=20)
    open_knock(book)
    book.claim("k1")
    with pytest.raises(DomainError) as refused:
        book.resolve("k1", KnockOutcome.DECLINED, now=1, by="jonas")
    assert code_of(refused) is ErrorCode.KNOCK_RESOLVED
    assert book.due(100) == []  # a claimed knock does not expire under its claimer
    book.release("k1")
    book.claim("k1")
    assert book.resolve("k1", KnockOutcome.ADMITTED, now=2, by="lea", claimed=True).outcome is KnockOutcome.ADMITTED
    assert len(book) == 0
