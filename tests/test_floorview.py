"""The client-side sequence rules, as every client applies them."""

from __future__ import annotations

from signalling.floorview import FloorView


def snapshot(seq: int) -> dict:
    return {"floor": {"id": "f"}, "rooms": [], "members": [], "seq": seq}


def joined(seq: int, user: str) -> dict:
    return {"seq": seq, "type": "joined", "member": {"user_id": user, "room_id": None}}


def test_frames_before_the_snapshot_are_replayed_and_old_ones_skipped() -> None:
    view = FloorView("f")
    assert view.apply(joined(5, "old")) and view.apply(joined(6, "new"))
    assert view.load_snapshot(snapshot(5)) is True
    assert view.seq == 6 and set(view.members) == {"new"}


def test_a_gap_is_reported_and_leaves_the_view_stale_until_a_new_snapshot() -> None:
    view = FloorView("f")
    view.load_snapshot(snapshot(1))
    assert view.apply(joined(3, "x")) is False
    assert view.stale and view.gaps == 1
    assert view.apply(joined(4, "y")) is True  # buffered while stale, not applied
    assert "y" not in view.members
    assert view.load_snapshot(snapshot(3)) is True
    assert view.seq == 4 and set(view.members) == {"y"}


def test_a_gap_inside_the_replayed_early_frames_is_reported_by_load_snapshot() -> None:
    view = FloorView("f")
    view.apply(joined(9, "late"))  # arrived before the snapshot; 7 and 8 never did
    assert view.load_snapshot(snapshot(6)) is False
    assert view.stale
