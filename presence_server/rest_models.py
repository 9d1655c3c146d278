"""Typed REST bodies. Shapes only: ranges and rules are the campus service's to check."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, StringConstraints

from presence_server.messages import Id

__all__ = ["RectIn", "FloorCreate", "FloorPatch", "RoomCreate", "RoomPatch", "DevTokenQuery"]

Name = Annotated[str, StringConstraints(min_length=1, max_length=200)]
# Owners are token subjects, which each municipality's identity provider chooses.
UserId = Annotated[str, StringConstraints(min_length=1, max_length=128)]
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
    owners: list[UserId] = Field(default_factory=list, max_length=100)
    expires_at: float | None = None
    id: Id | None = None


class RoomPatch(_Body):
    name: Name | None = None
    kind: RoomKindName | None = None
    rect: RectIn | None = None
    door: DoorName | None = None
    capacity: int | None = None
    owners: list[UserId] | None = Field(default=None, max_length=100)
    expires_at: float | None = None


class DevTokenQuery(BaseModel):
    model_config = ConfigDict(extra="forbid")

    municipality: Id
    user: Id
    name: Name
    roles: list[Literal["staff", "admin", "guest"]] = Field(min_length=1, max_length=3)
