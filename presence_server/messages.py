"""Typed client requests, validated at the edge.

Strict models that forbid unknown fields: a payload either is exactly one of
these or is refused with ``invalid_payload`` naming the field. Length caps here are
hard ceilings; tighter, configurable limits (status text, knock message) are
applied by the handlers.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, StringConstraints, ValidationError

from rooms.errors import DomainError, ErrorCode
from rooms.person import parse_person_id

__all__ = [
    "Empty",
    "FloorRef",
    "Move",
    "SetStatus",
    "KnockSend",
    "KnockAnswer",
    "KnockRef",
    "AuthRefresh",
    "CallJoin",
    "CallSignal",
    "CallRing",
    "CallAnswer",
    "RingRef",
    "CallNote",
    "ProfilePublish",
    "Person",
    "validation_error",
]

Id = Annotated[str, StringConstraints(min_length=1, max_length=128, pattern=r"^[A-Za-z0-9._:@-]+$")]
Text = Annotated[str, StringConstraints(max_length=1000, strip_whitespace=True)]
#: A person, "municipality/user_id" (docs/protocol.md §1.3): never a bare user id.
Person = Annotated[str, StringConstraints(min_length=3, max_length=200), AfterValidator(parse_person_id)]


class _Msg(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)


class Empty(_Msg):
    pass


class FloorRef(_Msg):
    floor_id: Id


class Move(_Msg):
    floor_id: Id
    room_id: Id | None = None  # None: the floor's hallway


class SetStatus(_Msg):
    status: Literal["available", "busy", "away", "do_not_disturb"]
    text: Text = ""
    # "user": every session of the user (an explicit choice); "session": this
    # session only (e.g. an idle tab reporting away).
    scope: Literal["user", "session"] = "user"


class KnockSend(_Msg):
    room_id: Id
    message: Text = ""


class KnockAnswer(_Msg):
    knock_id: Id
    admit: bool


class KnockRef(_Msg):
    knock_id: Id


class CallJoin(_Msg):
    room_id: Id


class CallSignal(_Msg):
    call_id: Annotated[str, StringConstraints(min_length=1, max_length=200)]
    to: Person
    kind: Literal["offer", "answer", "candidate", "renegotiate"]
    data: dict[str, Any]


class CallRing(_Msg):
    person: Person


class CallAnswer(_Msg):
    ring_id: Id
    accept: bool


class RingRef(_Msg):
    ring_id: Id


class CallNote(_Msg):
    person: Person
    text: Text


class ProfilePublish(_Msg):
    """The skills to publish platform-wide (docs/portal.md); ``[]`` opts out."""

    skills: Annotated[list[Annotated[str, StringConstraints(min_length=1, max_length=100)]], Field(max_length=100)]


class AuthRefresh(_Msg):
    token: Annotated[str, Field(min_length=1, max_length=8192)]


def validation_error(exc: ValidationError) -> DomainError:
    """The first problem, named by its field path, as an ``invalid_payload`` error."""
    first = exc.errors(include_url=False, include_input=False)[0]
    where = ".".join(str(part) for part in first["loc"]) or "payload"
    return DomainError(ErrorCode.INVALID_PAYLOAD, f"{where}: {first['msg']}", field=where)
