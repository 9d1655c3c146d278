"""The access rules, table by table: who sees, administers, opens doors and enters."""

from __future__ import annotations

import pytest

from rooms.access import can_admin_floor, can_admin_owner, can_change_door, can_see_floor, check_enter
from rooms.actors import Actor, Role
from rooms.errors import DomainError, ErrorCode
from rooms.model import Cooperation, DoorState, Floor, OwnerKind, Rect, Room, RoomKind
from rooms.person import PersonId
from rooms.project import Project


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

# A project across cooperations: all of Altbach, Ben of Bergheim coordinating,
# and one named person of Seefeld (another cooperation).
PROJECTS = {
    "p-digi": Project(
        "p-digi", "Digitales Bauamt", "", coordinators=(PersonId("bergheim/ben.bergheim"),),
        members=(PersonId("seefeld/sven.seefeld"),), municipalities=("altbach",),
    ),
}  # fmt: skip
DIGI = Floor("digi", "Digitales Bauamt", OwnerKind.PROJECT, "p-digi")
NO_PROJECT = Floor("orphan", "Orphan", OwnerKind.PROJECT, "p-gone")
# A project id that happens to equal a municipality or cooperation id confers nothing.
PROJECT_LOOKALIKE = Floor("p-lookalike", "Lookalike", OwnerKind.PROJECT, "altbach")

FLOORS = [ALTBACH_EG, BERGHEIM_EG, PROJEKT, SEEBUND, GHOST, LOOKALIKE, DIGI, NO_PROJECT, PROJECT_LOOKALIKE]

INVITED_GUEST = Actor("gast-1", "altbach", "Gast", frozenset({Role.GUEST}), project="p-digi")
INVITED_ELSEWHERE = Actor("gast-2", "altbach", "Gast", frozenset({Role.GUEST}), project="p-other")
STAFF_S_NAMESAKE = person("sven.seefeld", "bergheim")  # same sub as the named member, another town
ADMIN_B = person("admin.bergheim", "bergheim", Role.ADMIN)

#: actor -> the floors they see (every other floor in FLOORS is invisible to them)
SEES = {
    STAFF_A: {"altbach-eg", "projekt", "digi"},  # through the municipality
    ADMIN_A: {"altbach-eg", "projekt", "digi"},
    STAFF_ADMIN_A: {"altbach-eg", "projekt", "digi"},
    GUEST_A: {"altbach-eg"},  # a guest of Altbach is not a member through the town
    GUEST_ADMIN_A: {"altbach-eg"},
    STAFF_B: {"bergheim-eg", "projekt", "digi"},  # the coordinator
    ADMIN_S: {"seebund"},
    STAFF_S: {"seebund", "digi"},  # named in person, from another cooperation
    INVITED_GUEST: {"digi"},  # only the project: not even the host town's floors
    INVITED_ELSEWHERE: set(),
    STAFF_S_NAMESAKE: {"bergheim-eg", "projekt"},
    ADMIN_B: {"bergheim-eg", "projekt"},  # Bergheim is not a member town
}

#: actor -> the floors they administer
ADMINISTERS = {
    STAFF_A: set(),
    ADMIN_A: {"altbach-eg", "projekt"},  # a member town's admin does not administer the project
    STAFF_ADMIN_A: {"altbach-eg", "projekt"},
    GUEST_A: set(),
    GUEST_ADMIN_A: set(),  # a token that carries guest never administers
    STAFF_B: {"digi"},  # coordinators administer their project's floor
    ADMIN_S: {"seebund"},
    STAFF_S: set(),
    INVITED_GUEST: set(),
    INVITED_ELSEWHERE: set(),
    STAFF_S_NAMESAKE: set(),
    ADMIN_B: {"bergheim-eg", "projekt"},
}


@pytest.mark.parametrize("actor", list(SEES), ids=lambda a: a.user_id)
def test_visibility_table(actor: Actor) -> None:
    seen = {f.id for f in FLOORS if can_see_floor(actor, f, COOPS, PROJECTS)}
    assert seen == SEES[actor]


@pytest.mark.parametrize("actor", list(ADMINISTERS), ids=lambda a: a.user_id)
def test_admin_table(actor: Actor) -> None:
    administered = {f.id for f in FLOORS if can_admin_floor(actor, f, COOPS, PROJECTS)}
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
        (ADMIN_A, OwnerKind.PROJECT, "p-digi", False),  # project floors come with their project
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
    assert can_change_door(actor, room, floor, COOPS, PROJECTS) is expected


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
