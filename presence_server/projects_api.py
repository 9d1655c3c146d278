"""Projects over REST and Socket.IO (docs/projects.md): one set of request shapes,
one function per operation, used by both edges (:mod:`presence_server.projects_rest`
and the gateway) so they cannot drift apart.

REST (bearer token, JSON):

* ``POST   /api/v1/projects``                       create (any member of staff, per the town's policy)
* ``GET    /api/v1/projects``                       the caller's projects
* ``GET    /api/v1/projects/{id}``                  one project (members only; else ``not_found``)
* ``PATCH  /api/v1/projects/{id}``                  name, purpose, ends_at, membership lists (coordinators)
* ``DELETE /api/v1/projects/{id}``                  end it now: floor and rooms go (coordinators)
* ``POST   /api/v1/projects/{id}/members``          add ``{person, role}`` or ``{municipality}``
* ``DELETE /api/v1/projects/{id}/members?person=…`` or ``?municipality=…``: remove

Socket.IO: ``project.create``, ``project.list``, ``project.update``, with the same
bodies (``project.update`` carries ``project_id``).
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, StringConstraints

from presence_server.messages import Id
from presence_server.messages import Person as PersonRef
from rooms.actors import Actor
from rooms.campus import CampusService

__all__ = [
    "ProjectCreate",
    "ProjectPatch",
    "ProjectUpdate",
    "MemberAdd",
    "create_project",
    "list_projects",
    "update_project",
]

_Name = Annotated[str, StringConstraints(min_length=1, max_length=200)]
_Purpose = Annotated[str, StringConstraints(max_length=1000)]
_Town = Annotated[str, StringConstraints(min_length=1, max_length=64)]


class _Body(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)


class Members(_Body):
    persons: list[PersonRef] = Field(default_factory=list, max_length=200)
    municipalities: list[_Town] = Field(default_factory=list, max_length=200)


class ProjectCreate(_Body):
    name: _Name
    purpose: _Purpose = ""
    members: Members = Field(default_factory=Members)
    # A float in JSON may arrive as an int; both are unix seconds.
    ends_at: float | int | None = None
    template: Literal["meeting", "project_office", "lounge"] = "meeting"


class ProjectPatch(_Body):
    name: _Name | None = None
    purpose: _Purpose | None = None
    ends_at: float | int | None = None
    coordinators: list[PersonRef] | None = Field(default=None, max_length=200)
    members: list[PersonRef] | None = Field(default=None, max_length=200)
    municipalities: list[_Town] | None = Field(default=None, max_length=200)


class ProjectUpdate(ProjectPatch):
    project_id: Id


class MemberAdd(_Body):
    person: PersonRef | None = None
    municipality: _Town | None = None
    role: Literal["member", "coordinator"] = "member"


# ------------------------------------------------------------------ operations
async def create_project(campus: CampusService, actor: Actor, body: ProjectCreate) -> dict[str, Any]:
    project, floor, rooms = await campus.create_project(
        actor,
        name=body.name,
        purpose=body.purpose,
        persons=body.members.persons,
        municipalities=body.members.municipalities,
        ends_at=body.ends_at,
        template=body.template,
    )
    return {
        "project": campus.project_dict(project),
        "floor": {**floor.to_dict(), "rooms": [room.to_dict() for room in rooms]},
    }


def list_projects(campus: CampusService, actor: Actor) -> dict[str, Any]:
    return {"projects": [campus.project_dict(p) for p in campus.visible_projects(actor)]}


async def update_project(campus: CampusService, actor: Actor, project_id: str, body: ProjectPatch) -> dict[str, Any]:
    # exclude_unset: "ends_at": null (no end) differs from not sending ends_at.
    changes = body.model_dump(exclude_unset=True, exclude={"project_id"})
    project = await campus.update_project(actor, project_id, **changes)
    return {"project": campus.project_dict(project)}
