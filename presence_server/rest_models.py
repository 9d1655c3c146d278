"""Typed REST bodies. Shapes only: ranges and rules are the campus service's to check."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, StringConstraints

from presence_server.messages import Id
from presence_server.messages import Person as PersonRef

__all__ = [
    "RectIn",
    "FloorCreate",
    "FloorPatch",
    "RoomCreate",
    "RoomPatch",
    "DevTokenQuery",
    "PeopleSearchQuery",
    "BadgeQuery",
    "Occupant",
    "RoomOccupancy",
    "FloorOccupancy",
    "PersonCard",
    "PlatformCard",
    "BadgeAnswer",
    "PeopleSearchAnswer",
    "Skill",
    "PublishedSkillsBody",
    "PublishedSkillsAnswer",
]

Name = Annotated[str, StringConstraints(min_length=1, max_length=200)]
RoomKindName = Literal["office", "meeting", "project", "lounge", "service_counter"]
DoorName = Literal["open", "closed", "locked"]


class _Body(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)


class RectIn(_Body):
    x: int
    y: int
    w: int
    h: int


class FloorCreate(_Body):
    name: Name
    owner_kind: Literal["municipality", "cooperation"]
    owner_id: Id
    width: int = 1000
    height: int = 600
    position: int = 0
    id: Id | None = None


class FloorPatch(_Body):
    name: Name | None = None
    width: int | None = None
    height: int | None = None
    position: int | None = None


class RoomCreate(_Body):
    name: Name
    kind: RoomKindName
    rect: RectIn
    door: DoorName = "open"
    capacity: int = 8
    owners: list[PersonRef] = Field(default_factory=list, max_length=100)
    expires_at: float | None = None
    id: Id | None = None


class RoomPatch(_Body):
    name: Name | None = None
    kind: RoomKindName | None = None
    rect: RectIn | None = None
    door: DoorName | None = None
    capacity: int | None = None
    owners: list[PersonRef] | None = Field(default=None, max_length=100)
    expires_at: float | None = None


class DevTokenQuery(BaseModel):
    model_config = ConfigDict(extra="forbid")

    municipality: Id
    user: Id
    name: Name
    roles: list[Literal["staff", "admin", "guest"]] = Field(min_length=1, max_length=3)


class PeopleSearchQuery(BaseModel):
    """``GET /api/v1/people/search``: at least one of q, skill, department, job_title."""

    model_config = ConfigDict(extra="forbid")

    q: Annotated[str, StringConstraints(max_length=200)] = ""
    skill: Annotated[str, StringConstraints(max_length=60)] = ""
    department: Annotated[str, StringConstraints(max_length=120)] = ""
    job_title: Annotated[str, StringConstraints(max_length=120)] = ""
    limit: int = Field(default=20, ge=1, le=50)
    #: ``platform``: also people of other cooperations who published a matching skill.
    scope: Literal["cooperation", "platform"] = "cooperation"


class BadgeQuery(BaseModel):
    """``GET /api/v1/municipalities/{municipality_id}/users/{user_id}/badge``."""

    model_config = ConfigDict(extra="forbid")

    format: Literal["json", "svg"] = "json"


# --- portal answers (documentation only: the OpenAPI document names their shapes) ---


class Occupant(BaseModel):
    person: str  # "municipality/user_id"
    user_id: str
    name: str
    municipality: str
    guest: bool
    status: Literal["available", "busy", "away", "do_not_disturb"]
    status_text: str
    in_call: bool


class RoomOccupancy(BaseModel):
    room_id: str
    name: str
    kind: RoomKindName
    door: DoorName
    capacity: int
    occupants: list[Occupant]


class FloorSummary(BaseModel):
    id: str
    name: str
    owner_kind: Literal["municipality", "cooperation"]
    owner_id: str


class FloorOccupancy(BaseModel):
    """``GET /api/v1/floors/{floor_id}/occupancy``: rooms in name order; ``hallway``:
    people on the floor in no room."""

    ok: Literal[True]
    floor: FloorSummary
    seq: int
    rooms: list[RoomOccupancy]
    hallway: list[Occupant]


class PersonCard(BaseModel):
    """A person in a badge or a finder result. Floor and room only if the caller may
    see that floor; ``status`` is ``offline`` (and ``online`` false) for someone the
    directory keeps while they are away."""

    person: str  # "municipality/user_id"
    user_id: str
    name: str
    municipality: str
    department: str | None
    job_title: str | None
    skills: list[str]
    status: Literal["available", "busy", "away", "do_not_disturb", "offline"]
    status_text: str
    online: bool
    floor_id: str | None
    floor_name: str | None
    room_id: str | None
    room_name: str | None
    in_call: bool


class PlatformCard(PersonCard):
    """A person found beyond the caller's cooperations (``scope=platform``): only the
    skills they published (department and job title null, status text empty), and a
    floor and room only if the caller may see that floor."""

    platform: Literal[True]


class BadgeAnswer(BaseModel):
    ok: Literal[True]
    badge: PersonCard


class PeopleSearchAnswer(BaseModel):
    """Ranked: availability (available > busy/away/in a call > do_not_disturb > offline),
    then the caller's floor, the caller's municipality, the rest; then name."""

    ok: Literal[True]
    results: list[PersonCard | PlatformCard]


Skill = Annotated[str, StringConstraints(min_length=1, max_length=100)]


class PublishedSkillsBody(BaseModel):
    """``PUT /api/v1/me/published-skills`` (and the ``profile.publish`` event): the skills
    to publish platform-wide; ``[]`` opts out."""

    model_config = ConfigDict(extra="forbid", strict=True)

    skills: list[Skill] = Field(max_length=100)


class PublishedSkillsAnswer(BaseModel):
    """What the caller publishes platform-wide now, and what they could publish (their
    skills their municipality publishes)."""

    ok: Literal[True]
    published: list[str]
    publishable: list[str]
