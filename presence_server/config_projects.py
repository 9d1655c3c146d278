"""Settings for self-service projects (rooms/project.py): who may create them,
how many rooms, how long. A platform-wide ``[projects]`` section, overridable per
municipality under ``auth.municipalities.<id>.projects``: the creator's town's
policy applies to the projects its staff create."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from rooms.project import ProjectPolicy

__all__ = ["ProjectSettings"]


class ProjectSettings(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    #: "staff": every member of staff may create a project; "admin": only admins.
    creators: Literal["staff", "admin"] = "staff"
    #: Rooms one project floor may hold (the template's and those coordinators add).
    max_rooms: int = Field(default=4, ge=1, le=50)
    #: Longest project, in days from creation; its rooms close at the end date.
    #: 0: projects need no end date.
    max_days: int = Field(default=365, ge=0, le=3650)

    def policy(self) -> ProjectPolicy:
        return ProjectPolicy(creators=self.creators, max_rooms=self.max_rooms, max_days=self.max_days)
