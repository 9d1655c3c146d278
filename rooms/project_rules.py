"""Field checks for project writes: pure, returning clean values or raising
``invalid_payload`` naming the field (the shape of :mod:`rooms.validation`)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace
from typing import Any, Final

from rooms.errors import DomainError, ErrorCode
from rooms.person import PersonId, parse_person_id, split_person
from rooms.project import MAX_PROJECT_MEMBERS, Project, ProjectPolicy
from rooms.validation import check_expires_at, check_name, invalid

__all__ = ["PURPOSE_MAX", "PROJECT_FIELDS", "clean_project_fields", "check_membership", "check_duration"]

PURPOSE_MAX: Final = 200
#: What a coordinator may change after creation.
PROJECT_FIELDS: Final = ("name", "purpose", "ends_at", "coordinators", "members", "municipalities")

_DAY: Final = 86_400.0


def _persons(value: Any, field: str) -> tuple[PersonId, ...]:
    if isinstance(value, (str, bytes)) or not isinstance(value, (list, tuple)):
        raise invalid(field, "must be a list of person ids ('municipality/user_id')")
    try:
        return tuple(dict.fromkeys(parse_person_id(p) for p in value))
    except ValueError as exc:
        raise invalid(field, str(exc)) from None


def _towns(value: Any, field: str) -> tuple[str, ...]:
    if isinstance(value, (str, bytes)) or not isinstance(value, (list, tuple)):
        raise invalid(field, "must be a list of municipality ids")
    if not all(isinstance(m, str) for m in value):
        raise invalid(field, "must be a list of municipality ids")
    return tuple(dict.fromkeys(value))


def _purpose(value: Any) -> str:
    if not isinstance(value, str):
        raise invalid("purpose", "must be a string")
    purpose = value.strip()
    if len(purpose) > PURPOSE_MAX:
        raise invalid("purpose", f"at most {PURPOSE_MAX} characters")
    return purpose


def clean_project_fields(raw: Mapping[str, Any], *, now: float) -> dict[str, Any]:
    """Check the :data:`PROJECT_FIELDS` present in ``raw``."""
    clean: dict[str, Any] = {}
    if "name" in raw:
        clean["name"] = check_name(raw["name"])
    if "purpose" in raw:
        clean["purpose"] = _purpose(raw["purpose"])
    if "ends_at" in raw:
        clean["ends_at"] = check_expires_at(raw["ends_at"], now, "ends_at")
    for field in ("coordinators", "members"):
        if field in raw:
            clean[field] = _persons(raw[field], field)
    if "municipalities" in raw:
        clean["municipalities"] = _towns(raw["municipalities"], "municipalities")
    return clean


def check_membership(project: Project, municipalities: Mapping[str, object]) -> Project:
    """Every person and town named must exist on the platform; at least one
    coordinator; coordinators are not also listed as plain members; a size limit."""
    if not project.coordinators:
        raise invalid("coordinators", "a project needs at least one coordinator")
    for field, persons in (("coordinators", project.coordinators), ("members", project.members)):
        for person in persons:
            if split_person(person)[0] not in municipalities:
                raise invalid(field, f"{person!r}: no such municipality")
    for town in project.municipalities:
        if town not in municipalities:
            raise invalid("municipalities", f"{town!r}: no such municipality")
    members = tuple(p for p in project.members if p not in project.coordinators)
    size = len(project.coordinators) + len(members) + len(project.municipalities)
    if size > MAX_PROJECT_MEMBERS:
        raise invalid("members", f"at most {MAX_PROJECT_MEMBERS} persons and municipalities")
    return project if members == project.members else replace(project, members=members)


def check_duration(ends_at: float | None, policy: ProjectPolicy, *, created_at: float, now: float) -> float | None:
    """The end date within the town's longest duration; none given: the longest
    allowed (a project that is never ended by anyone still ends)."""
    if policy.max_days <= 0:
        return ends_at
    latest = created_at + policy.max_days * _DAY
    if ends_at is None:
        return latest
    if ends_at > latest + 1.0:  # a second's slack for clocks and rounding
        raise DomainError(
            ErrorCode.INVALID_PAYLOAD,
            f"ends_at: at most {policy.max_days} days after the project was created",
            field="ends_at",
            max_days=policy.max_days,
        )
    return ends_at
