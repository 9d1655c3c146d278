"""Who may see, administer and enter what: pure rules, no I/O, no state.

Every function takes the facts it needs and answers; callers (the campus service,
the presence layer) fetch those facts. Keeping the rules here, in one small
module, is what lets one table-driven test cover them all.

The rules:

* A member of staff sees the floors of their own municipality and the floors of
  every cooperation their municipality is a member of.
* A guest sees only the floors of their own (host) municipality.
* A project's floor is seen by its members only: coordinators, named persons,
  staff of member municipalities, and guests invited into that project. An
  invited guest (``Actor.project``) sees that project's floor and nothing else.
* A project floor is administered by the project's coordinators (never by a
  town's admin: the project is not the town's).
* An admin administers exactly the floors they can see as staff; a guest never
  administers anything.
* A room's door may be changed by the floor's admins and by the room's owners.
* A guest is never a room owner, even if listed as one: owners pass every door,
  and a guest token must not.
* Owners are persons, (municipality, user id): a token from another town with
  the same ``sub`` is another person and owns nothing here.
"""

from __future__ import annotations

from collections.abc import Mapping

from rooms.actors import Actor
from rooms.errors import DomainError, ErrorCode
from rooms.model import Cooperation, DoorState, Floor, OwnerKind, Room
from rooms.project import Project

__all__ = [
    "is_member_of",
    "is_project_member",
    "is_coordinator",
    "is_room_owner",
    "can_see_floor",
    "can_admin_owner",
    "can_admin_floor",
    "can_change_door",
    "check_door",
    "check_enter",
    "room_full",
]


def is_member_of(actor: Actor, cooperation_id: str, cooperations: Mapping[str, Cooperation]) -> bool:
    """True if the actor's municipality is a member of that (existing) cooperation."""
    cooperation = cooperations.get(cooperation_id)
    return cooperation is not None and actor.municipality_id in cooperation.members


def is_project_member(actor: Actor, project: Project) -> bool:
    """Sees the project: a guest only if invited into it; staff if named, coordinating,
    or of a member municipality."""
    if actor.is_guest:
        return actor.project == project.id
    return project.includes(actor.person_id, actor.municipality_id)


def is_coordinator(actor: Actor, project: Project) -> bool:
    """Manages the project: listed as coordinator, and not a guest."""
    return not actor.is_guest and actor.person_id in project.coordinators


def is_room_owner(actor: Actor, room: Room) -> bool:
    """The actor acts as an owner of ``room``: listed by qualified id, and not a guest."""
    return not actor.is_guest and room.is_owner(actor.person_id)


def _belongs_to(actor: Actor, owner_kind: OwnerKind, owner_id: str, cooperations: Mapping[str, Cooperation]) -> bool:
    """The owner is the actor's municipality or a cooperation it is a member of."""
    if owner_kind is OwnerKind.PROJECT:
        return False  # projects are answered by membership, never by the town
    if owner_kind is OwnerKind.MUNICIPALITY:
        return owner_id == actor.municipality_id
    return is_member_of(actor, owner_id, cooperations)


def can_see_floor(
    actor: Actor, floor: Floor, cooperations: Mapping[str, Cooperation], projects: Mapping[str, Project]
) -> bool:
    """Own municipality's floors always; cooperation floors only for members who are
    not guests; project floors for project members; an invited guest its project only."""
    if floor.owner_kind is OwnerKind.PROJECT:
        project = projects.get(floor.owner_id)
        return project is not None and is_project_member(actor, project)
    if actor.project is not None:
        return False  # confined to a project
    if actor.is_guest:
        return floor.owner_kind is OwnerKind.MUNICIPALITY and floor.owner_id == actor.municipality_id
    return _belongs_to(actor, floor.owner_kind, floor.owner_id, cooperations)


def can_admin_owner(
    actor: Actor, owner_kind: OwnerKind, owner_id: str, cooperations: Mapping[str, Cooperation]
) -> bool:
    """May the actor administer floors of this owner (including creating new ones)?
    Never a project's: those floors come with their project."""
    if actor.is_guest or not actor.is_admin:
        return False
    return _belongs_to(actor, owner_kind, owner_id, cooperations)


def can_admin_floor(
    actor: Actor, floor: Floor, cooperations: Mapping[str, Cooperation], projects: Mapping[str, Project]
) -> bool:
    """An admin of the floor's owner: its municipality, or a member of its cooperation;
    for a project floor, the project's coordinators."""
    if floor.owner_kind is OwnerKind.PROJECT:
        project = projects.get(floor.owner_id)
        return project is not None and is_coordinator(actor, project)
    return can_admin_owner(actor, floor.owner_kind, floor.owner_id, cooperations)


def can_change_door(
    actor: Actor, room: Room, floor: Floor, cooperations: Mapping[str, Cooperation], projects: Mapping[str, Project]
) -> bool:
    """Admins of the floor, and owners of the room who are not guests."""
    if can_admin_floor(actor, floor, cooperations, projects):
        return True
    return is_room_owner(actor, room)


def check_door(actor: Actor, room: Room, *, admitted: bool = False) -> None:
    """The door part of :func:`check_enter`: owners pass any door, an admitted
    knocker a closed one, nobody else a closed (``KNOCK_REQUIRED``) or locked
    (``LOCKED``) one. Capacity is checked separately, where it can be atomic."""
    if is_room_owner(actor, room):
        return
    if room.door is DoorState.LOCKED:
        raise DomainError(ErrorCode.LOCKED)
    if room.door is DoorState.CLOSED and not admitted:
        raise DomainError(ErrorCode.KNOCK_REQUIRED)


def check_enter(
    actor: Actor, room: Room, *, occupants: int, admitted: bool = False, already_inside: bool = False
) -> None:
    """Raise :class:`DomainError` unless the actor may walk into ``room`` now.

    ``occupants`` is how many people are inside (the actor not counted);
    ``admitted`` means someone inside answered the actor's knock.

    In this order: ``ALREADY_INSIDE``; then owners always enter (their own office
    is never locked, closed or full for them); ``LOCKED``; ``KNOCK_REQUIRED`` for a
    closed door without admission; ``ROOM_FULL`` when ``occupants >= capacity``,
    even for someone admitted, because capacity protects the call inside.
    Visibility of the room's floor is the caller's to check first.
    """
    if already_inside:
        raise DomainError(ErrorCode.ALREADY_INSIDE)
    if is_room_owner(actor, room):
        return
    check_door(actor, room, admitted=admitted)
    if occupants >= room.capacity:
        raise room_full(room.capacity)


def room_full(capacity: int) -> DomainError:
    """The one shape of ``room_full``: it always carries the room's ``capacity``
    (docs/protocol.md §2), whichever store found the room full."""
    return DomainError(ErrorCode.ROOM_FULL, f"capacity {capacity}", capacity=capacity)
