"""The client-side sequence rules, as every client applies them."""

from __future__ import annotations

from signalling.floorview import FloorView


def snapshot(seq: int) -> dict:
    return {"floor": {"id": "f"}, "rooms": [], "members": [], "seq": seq}


def joined(seq: int, person: str) -> dict:
    municipality, _, user_id = person.partition("/")
    member = {"person": person, "user_id": user_id, "municipality": municipality, "room_id": None}
    return {"seq": seq, "type": "joined", "member": member}


def test_frames_before_the_snapshot_are_replayed_and_old_ones_skipped() -> None:
    view = FloorView("f")
    assert view.apply(joined(5, "m/old")) and view.apply(joined(6, "m/new"))
    assert view.load_snapshot(snapshot(5)) is True
    assert view.seq == 6 and set(view.members) == {"m/new"}


def test_a_gap_is_reported_and_leaves_the_view_stale_until_a_new_snapshot() -> None:
    view = FloorView("f")
    view.load_snapshot(snapshot(1))
    assert view.apply(joined(3, "m/x")) is False
    assert view.stale and view.gaps == 1
    assert view.apply(joined(4, "m/y")) is True  # buffered while stale, not applied
    assert "m/y" not in view.members
    assert view.load_snapshot(snapshot(3)) is True
    assert view.seq == 4 and set(view.members) == {"m/y"}


def test_a_gap_inside_the_replayed_early_frames_is_reported_by_load_snapshot() -> None:
    view = FloorView("f")
    view.apply(joined(9, "m/late"))  # arrived before the snapshot; 7 and 8 never did
    assert view.load_snapshot(snapshot(6)) is False
    assert view.stale


def test_the_same_user_id_in_two_towns_is_two_members_and_a_leave_removes_only_its_person() -> None:
    view = FloorView("f")
    view.load_snapshot(snapshot(0))
    assert view.apply(joined(1, "altbach/m.mueller")) and view.apply(joined(2, "lindenau/m.mueller"))
    assert set(view.members) == {"altbach/m.mueller", "lindenau/m.mueller"}
    assert view.apply({"seq": 3, "type": "left", "person": "altbach/m.mueller"})
    assert set(view.members) == {"lindenau/m.mueller"}
