"""Invitations over REST and Socket.IO (docs/projects.md, "Invitations"): one set
of request shapes and one function per operation, used by both edges
(:mod:`presence_server.invitations_rest` and the gateway).

REST:

* ``POST   /api/v1/projects/{id}/invitations``                  create (coordinators) -> 201
* ``GET    /api/v1/projects/{id}/invitations``                  list (coordinators)
* ``DELETE /api/v1/projects/{id}/invitations/{invitation_id}``  revoke (coordinators)
* ``POST   /api/v1/invitations/redeem`` ``{code}``              a guest token (no bearer token)

Socket.IO: ``invitation.create``, ``invitation.list``, ``invitation.revoke``
with the same bodies plus ``project_id`` (and ``invitation_id``).
"""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, StringConstraints

from presence_server.invitations.service import InvitationService
from presence_server.invitations.store import Invitation
from presence_server.messages import Id
from rooms.actors import Actor

__all__ = [
    "InvitationCreate",
    "InvitationCreateMsg",
    "InvitationListMsg",
    "InvitationRevokeMsg",
    "InvitationRedeem",
    "create_invitation",
    "list_invitations",
    "revoke_invitation",
    "invite_link",
]

_Name = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=80)]
_Code = Annotated[str, StringConstraints(min_length=1, max_length=128)]


class _Body(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)


class InvitationCreate(_Body):
    #: The name the guests are shown under.
    display_name: _Name
    max_uses: int = Field(default=1, ge=1, le=50)
    #: Unix seconds; or ``expires_in_seconds``; neither: ``invitations.default_ttl_seconds``.
    expires_at: float | int | None = None
    expires_in_seconds: int | None = Field(default=None, ge=1)


class InvitationCreateMsg(InvitationCreate):
    project_id: Id


class InvitationListMsg(_Body):
    project_id: Id


class InvitationRevokeMsg(_Body):
    project_id: Id
    invitation_id: Id


class InvitationRedeem(_Body):
    code: _Code


def invite_link(base: str, code: str) -> str:
    """The link: the code in the fragment, which browsers never send to a server."""
    return f"{base.rstrip('/')}/invite#{code}"


async def create_invitation(
    service: InvitationService, actor: Actor, project_id: str, body: InvitationCreate, *, base: str
) -> dict[str, Any]:
    invitation, code = await service.create(
        actor,
        project_id,
        display_name=body.display_name,
        max_uses=body.max_uses,
        expires_at=None if body.expires_at is None else float(body.expires_at),
        expires_in_seconds=body.expires_in_seconds,
    )
    return {"invitation": invitation.public_dict(), "code": code, "link": invite_link(base, code)}


async def list_invitations(service: InvitationService, actor: Actor, project_id: str) -> dict[str, Any]:
    found: list[Invitation] = await service.of_project(actor, project_id)
    return {"invitations": [i.public_dict() for i in found]}


async def revoke_invitation(service: InvitationService, actor: Actor, project_id: str, invitation_id: str) -> dict[str, Any]:
    return {"invitation": (await service.revoke(actor, project_id, invitation_id)).public_dict()}
