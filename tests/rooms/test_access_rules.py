"""The access rules, table by table: who sees, administers, opens doors and enters."""

from __future__ import annotations

import pytest

from rooms.access import can_admin_floor, can_admin_owner, can_change_door, can_see_floor, check_enter
from rooms.actors import Actor, Role
from rooms.errors import DomainError, ErrorCode
from rooms.model import Cooperation, DoorState, Floor, OwnerKind, Rect, Room, RoomKind
from rooms.person import PersonId


def person(user_id: str, municipality: str, *roles: Role) -> Actor:
    return Actor(user_id, municipality, user_id, frozenset(roles or {Role.STAFF}))


COOPS = {
    "vier-taeler": Cooperation("vier-taeler", "Vier Täler", ("altbach", "bergheim")),
    "seebund": Cooperation("seebund", "Seebund", ("seefeld",)),
}

ALTBACH_EG = Floor("altbach-eg", "Altbach EG", OwnerKind.MUNICIPALITY, "altbach")
BERGHEIM_EG = Floor("bergheim-eg", "Bergheim EG", OwnerKind.MUNICIPALITY, "bergheim")
PROJEKT = Floor("projekt", "Projekt", OwnerKind.COOPERATION, "vier-taeler")
SEEBUND = Floor("seebund", "Seebund", OwnerKind.COOPERATION, "seebund")
GHOST = Floor("ghost", "Ghost", OwnerKind.COOPERATION, "no-such-coop")
# A cooperation id that happens to equal a municipality id must not be confused with it.
LOOKALIKE = Floor("lookalike", "Lookalike", OwnerKind.COOPERATION, "altbach")

STAFF_A = person("anna.altbach", "altbach")
ADMIN_A = person("admin.altbach", "altbach", Role.ADMIN)
STAFF_ADMIN_A = person("boss.altbach", "altbach", Role.STAFF, Role.ADMIN)
GUEST_A = person("gast.altbach", "altbach", Role.GUEST)
GUEST_ADMIN_A = person("gast.admin", "altbach", Role.GUEST, Role.ADMIN)  # a guest: admin adds nothing
STAFF_B = person("ben.bergheim", "bergheim")
ADMIN_S = person("admin.seefeld", "seefeld", Role.ADMIN)
STAFF_S = person("sven.seefeld", "seefeld")

FLOORS = [ALTBACH_EG, BERGHEIM_EG, PROJEKT, SEEBUND, GHOST, LOOKALIKE]

#: actor -> the floors they see (every other floor in FLOORS is invisible to them)
SEES = {
    STAFF_A: {"altbach-eg", "projekt"},
    ADMIN_A: {"altbach-eg", "projekt"},
    STAFF_ADMIN_A: {"altbach-eg", "projekt"},
    GUEST_A: {"altbach-eg"},
    GUEST_ADMIN_A: {"altbach-eg"},
    STAFF_B: {"bergheim-eg", "projekt"},
    ADMIN_S: {"seebund"},
    STAFF_S: {"seebund"},
}

#: actor -> the floors they administer
ADMINISTERS = {
    STAFF_A: set(),
    ADMIN_A: {"altbach-eg", "projekt"},
    STAFF_ADMIN_A: {"altbach-eg", "projekt"},
    GUEST_A: set(),
    GUEST_ADMIN_A: set(),  # a token that carries guest never administers
    STAFF_B: set(),
    ADMIN_S: {"seebund"},
    STAFF_S: set(),
}


@pytest.mark.parametrize("actor", list(SEES), ids=lambda a: a.user_id)
def test_visibility_table(actor: Actor) -> None:
    seen = {f.id for f in FLOORS if can_see_floor(actor, f, COOPS)}
    assert seen == SEES[actor]


@pytest.mark.parametrize("actor", list(ADMINISTERS), ids=lambda a: a.user_id)
def test_admin_table(actor: Actor) -> None:
    administered = {f.id for f in FLOORS if can_admin_floor(actor, f, COOPS)}
    assert administered == ADMINISTERS[actor]
    # Nobody administers what they cannot see.
    assert administered <= SEES[actor]


@pytest.mark.parametrize(
    ("actor", "owner_kind", "owner_id", "expected"),
    [
        (ADMIN_A, OwnerKind.MUNICIPALITY, "altbach", True),
        (ADMIN_A, OwnerKind.MUNICIPALITY, "bergheim", False),
        (ADMIN_A, OwnerKind.COOPERATION, "vier-taeler", True),
        (ADMIN_A, OwnerKind.COOPERATION, "seebund", False),
        (ADMIN_A, OwnerKind.COOPERATION, "no-such-coop", False),
        (STAFF_A, OwnerKind.MUNICIPALITY, "altbach", False),
        (GUEST_A, OwnerKind.MUNICIPALITY, "altbach", False),
    ],
)
def test_who_may_administer_an_owner(actor: Actor, owner_kind: OwnerKind, owner_id: str, expected: bool) -> None:
    assert can_admin_owner(actor, owner_kind, owner_id, COOPS) is expected


OFFICE = Room("altbach-buero-anna", "altbach-eg", "Büro Anna", RoomKind.OFFICE, Rect(0, 0, 100, 100),
              DoorState.CLOSED, capacity=2, owners=(PersonId("altbach/anna.altbach"), PersonId("altbach/gast.altbach")))  # fmt: skip
PROJECT_ROOM = Room("projekt-raum", "projekt", "Projektraum", RoomKind.PROJECT, Rect(0, 0, 100, 100),
                    owners=(PersonId("bergheim/ben.bergheim"),))  # fmt: skip


@pytest.mark.parametrize(
    ("actor", "room", "floor", "expected"),
    [
        (STAFF_A, OFFICE, ALTBACH_EG, True),  # owner
        (GUEST_A, OFFICE, ALTBACH_EG, False),  # owner, but a guest
        (ADMIN_A, OFFICE, ALTBACH_EG, True),  # admin of the floor, not an owner
        (person("mia.altbach", "altbach"), OFFICE, ALTBACH_EG, False),  # colleague, neither
        (ADMIN_S, OFFICE, ALTBACH_EG, False),  # admin elsewhere
        (STAFF_B, PROJECT_ROOM, PROJEKT, True),  # owner of a cooperation room
        (person("ben.bergheim", "altbach"), PROJECT_ROOM, PROJEKT, False),  # same sub, another town: not the owner
        (ADMIN_A, PROJECT_ROOM, PROJEKT, True),  # admin of a member municipality
        (STAFF_A, PROJECT_ROOM, PROJEKT, False),  # member, but neither owner nor admin
    ],
)
def test_door_table(actor: Actor, room: Room, floor: Floor, expected: bool) -> None:
    assert can_change_door(actor, room, floor, COOPS) is expected


def _room(door: DoorState, capacity: int = 2) -> Room:
    return Room("r", "altbach-eg", "R", RoomKind.MEETING, Rect(0, 0, 50, 50), door, capacity, owners=(PersonId("altbach/owner"),))


OWNER = person("owner", "altbach")
VISITOR = person("visitor", "altbach")
OWNER_ELSEWHERE = person("owner", "bergheim")
GUEST_OWNER = person("owner", "altbach", Role.GUEST)


@pytest.mark.parametrize(
    ("actor", "door", "occupants", "admitted", "inside", "expected"),
    [
        (VISITOR, DoorState.OPEN, 0, False, False, None),
        (VISITOR, DoorState.OPEN, 1, False, False, None),
        (VISITOR, DoorState.OPEN, 2, False, False, ErrorCode.ROOM_FULL),
        (VISITOR, DoorState.OPEN, 0, False, True, ErrorCode.ALREADY_INSIDE),
        (VISITOR, DoorState.CLOSED, 0, False, False, ErrorCode.KNOCK_REQUIRED),
        (VISITOR, DoorState.CLOSED, 0, True, False, None),
        (VISITOR, DoorState.CLOSED, 2, True, False, ErrorCode.ROOM_FULL),  # admitted, but full
        (VISITOR, DoorState.CLOSED, 5, False, False, ErrorCode.KNOCK_REQUIRED),  # the door speaks first
        (VISITOR, DoorState.LOCKED, 0, False, False, ErrorCode.LOCKED),
        (VISITOR, DoorState.LOCKED, 0, True, False, ErrorCode.LOCKED),  # admission does not unlock
        (OWNER, DoorState.LOCKED, 0, False, False, None),
        (OWNER, DoorState.CLOSED, 0, False, False, None),
        (OWNER, DoorState.OPEN, 9, False, False, None),  # owners enter even a full room
        (OWNER, DoorState.LOCKED, 0, False, True, ErrorCode.ALREADY_INSIDE),
        (OWNER_ELSEWHERE, DoorState.LOCKED, 0, False, False, ErrorCode.LOCKED),  # same sub, another town
        (GUEST_OWNER, DoorState.LOCKED, 0, False, False, ErrorCode.LOCKED),  # a guest never acts as owner
    ],
)
def test_enter_table(
    actor: Actor, door: DoorState, occupants: int, admitted: bool, inside: bool, expected: ErrorCode | None
) -> None:
    room = _room(door)
    if expected is None:
        check_enter(actor, room, occupants=occupants, admitted=admitted, already_inside=inside)
    else:
        with pytest.raises(DomainError) as err:
            check_enter(actor, room, occupants=occupants, admitted=admitted, already_inside=inside)
        assert err.value.code is expected
