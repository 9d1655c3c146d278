"""The audit endpoint's request and answer shapes: validated at the edge
(:mod:`presence_server.audit_rest`) and described in the OpenAPI document
(:mod:`presence_server.openapi_audit`)."""

from __future__ import annotations

from typing import Any, Final, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

__all__ = ["AuditQueryParams", "AuditEntryModel", "AuditAnswer", "NDJSON", "MAX_LIMIT"]

NDJSON: Final = "application/x-ndjson"
#: The most entries one request returns (page on with ``after``).
MAX_LIMIT: Final = 10_000


class AuditQueryParams(BaseModel):
    """``GET /api/v1/audit`` query parameters."""

    model_config = ConfigDict(extra="forbid")

    since: float | None = Field(default=None, ge=0, description="Unix seconds, inclusive.")
    until: float | None = Field(default=None, ge=0, description="Unix seconds, exclusive.")
    after: str | None = Field(
        default=None, pattern=r"^[0-9]{16}-[0-9a-f]{8}$",
        description="An entry id (next_after, or the last line of an export): continue after it.",
    )
    limit: int = Field(default=1000, ge=1, le=MAX_LIMIT, description="At most this many entries.")
    format: Literal["json", "jsonl"] | None = Field(
        default=None, description="jsonl: JSON lines (as Accept: application/x-ndjson)."
    )

    @model_validator(mode="after")
    def _range(self) -> AuditQueryParams:
        if self.since is not None and self.until is not None and self.until < self.since:
            raise ValueError("until must not lie before since")
        return self


class AuditEntryModel(BaseModel):
    """One audit entry (rooms.audit.AuditEntry.to_dict)."""

    id: str = Field(description="Sorts by time: 16 digits of microseconds, '-', 8 hex digits.")
    at: float = Field(description="Unix seconds.")
    actor: str | None = Field(description="The person 'municipality/user_id'; null: the system (room expiry).")
    actor_municipality: str | None
    action: str = Field(description="floor.created, floor.updated, floor.deleted, room.created, room.updated, "
                                    "door.changed, room.deleted, room.expired, knock.admitted, ...")
    target: dict[str, str] = Field(description="Kind -> id, e.g. {room, floor}; knock.admitted adds person, knock.")
    change: dict[str, Any] = Field(description="Field -> {old, new}; old missing on creation, new on deletion.")
    scopes: list[str] = Field(description="Municipalities whose admins may read the entry.")
    project: str | None = Field(description="The project whose coordinators may read the entry.")


class AuditAnswer(BaseModel):
    ok: Literal[True]
    entries: list[AuditEntryModel]
    next_after: str | None = Field(description="Set when limit entries came back: pass it as after.")
