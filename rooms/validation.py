"""Field checks for campus writes: pure functions that return the clean value.

Each check takes the raw value (from a REST body, a socket event or a seed file)
and either returns it normalised (a stripped name, an enum, a tuple) or raises
``DomainError(INVALID_PAYLOAD)`` whose detail starts with the field name and whose
``extra`` carries ``field=...``, so a client can point at the offending input.
"""

from __future__ import annotations

import enum
import math
import re
from collections.abc import Mapping, Sequence
from typing import Any, Final, TypeVar

from rooms.errors import DomainError, ErrorCode
from rooms.model import DoorState, Floor, Rect, RoomKind
from rooms.person import USER_ID_MAX, PersonId, parse_person_id

__all__ = [
    "NAME_MAX",
    "FLOOR_SIZE_MIN",
    "FLOOR_SIZE_MAX",
    "RECT_MIN_SIDE",
    "CAPACITY_MAX",
    "OWNERS_MAX",
    "USER_ID_MAX",
    "POSITION_LIMIT",
    "invalid",
    "check_id",
    "check_name",
    "check_int",
    "check_enum",
    "check_rect",
    "check_capacity",
    "check_owners",
    "check_expires_at",
    "FLOOR_FIELDS",
    "ROOM_FIELDS",
    "clean_floor_fields",
    "clean_room_fields",
    "reject_unknown",
]

E = TypeVar("E", bound=enum.Enum)

NAME_MAX: Final = 80
FLOOR_SIZE_MIN: Final = 100
FLOOR_SIZE_MAX: Final = 10_000
RECT_MIN_SIDE: Final = 10
CAPACITY_MAX: Final = 500
OWNERS_MAX: Final = 20
#: Floors are ordered by position; negative numbers are basements.
POSITION_LIMIT: Final = 1_000

#: The floor fields an admin may set (the owner is fixed at creation).
FLOOR_FIELDS: Final = ("name", "width", "height", "position")
#: The room fields an admin may set (the floor is fixed at creation).
ROOM_FIELDS: Final = ("name", "kind", "rect", "door", "capacity", "owners", "expires_at")

# Ids appear in URLs, Socket.IO rooms and Redis keys: keep them to a safe alphabet.
_ID_RE: Final = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}")


def invalid(field: str, problem: str) -> DomainError:
    """The one shape of a validation error: ``"<field>: <problem>"``."""
    return DomainError(ErrorCode.INVALID_PAYLOAD, f"{field}: {problem}", field=field)


def check_id(value: Any, field: str) -> str:
    if not isinstance(value, str) or not _ID_RE.fullmatch(value):
        raise invalid(field, "must be 1 to 64 letters, digits, '.', '_' or '-', starting with a letter or digit")
    return value


def check_name(value: Any, field: str = "name") -> str:
    """Stripped; 1 to :data:`NAME_MAX` characters."""
    if not isinstance(value, str):
        raise invalid(field, "must be a string")
    name = value.strip()
    if not 1 <= len(name) <= NAME_MAX:
        raise invalid(field, f"must be 1 to {NAME_MAX} characters")
    return name


def check_int(value: Any, field: str, lo: int, hi: int) -> int:
    # bool is an int subclass; ``true`` for a width is a client bug, not 1.
    if not isinstance(value, int) or isinstance(value, bool):
        raise invalid(field, "must be an integer")
    if not lo <= value <= hi:
        raise invalid(field, f"must be between {lo} and {hi}")
    return value


def check_enum(enum_cls: type[E], value: Any, field: str) -> E:
    """Accepts the member or its value (``"closed"`` for ``DoorState.CLOSED``)."""
    if isinstance(value, enum_cls):
        return value
    try:
        return enum_cls(value)
    except (ValueError, TypeError):
        allowed = ", ".join(str(m.value) for m in enum_cls)
        raise invalid(field, f"must be one of {allowed}") from None


def check_rect(value: Any, *, width: int, height: int, field: str = "rect") -> Rect:
    """A :class:`Rect` or a mapping with x, y, w, h that lies within a width x height floor."""
    if isinstance(value, Rect):
        rect = value
    elif isinstance(value, Mapping):
        try:
            rect = Rect(*(check_int(value[k], f"{field}.{k}", -FLOOR_SIZE_MAX, FLOOR_SIZE_MAX) for k in "xywh"))
        except KeyError as exc:
            raise invalid(field, f"missing {exc.args[0]!r}") from None
    else:
        raise invalid(field, "must be an object with x, y, w, h")
    for k in "xywh":
        if not isinstance(getattr(rect, k), int) or isinstance(getattr(rect, k), bool):
            raise invalid(f"{field}.{k}", "must be an integer")
    if rect.x < 0 or rect.y < 0:
        raise invalid(field, "x and y must not be negative")
    if rect.w < RECT_MIN_SIDE or rect.h < RECT_MIN_SIDE:
        raise invalid(field, f"w and h must be at least {RECT_MIN_SIDE}")
    if rect.x + rect.w > width or rect.y + rect.h > height:
        raise invalid(field, f"must lie within the floor ({width} x {height})")
    return rect


def check_capacity(value: Any, field: str = "capacity") -> int:
    return check_int(value, field, 1, CAPACITY_MAX)


def check_owners(value: Any, field: str = "owners") -> tuple[PersonId, ...]:
    """At most :data:`OWNERS_MAX` person ids (``municipality/user_id``); duplicates dropped, order kept."""
    # A bare string is a sequence too, and would become one owner per character.
    if isinstance(value, (str, bytes)) or not isinstance(value, (list, tuple)):
        raise invalid(field, "must be a list of person ids ('municipality/user_id')")
    try:
        owners = tuple(dict.fromkeys(parse_person_id(owner) for owner in value))
    except ValueError as exc:
        raise invalid(field, str(exc)) from None
    if len(owners) > OWNERS_MAX:
        raise invalid(field, f"at most {OWNERS_MAX} owners")
    return owners


def check_expires_at(value: Any, now: float, field: str = "expires_at") -> float | None:
    """None (permanent) or a unix time after ``now``."""
    if value is None:
        return None
    if not isinstance(value, (int, float)) or isinstance(value, bool) or not math.isfinite(value):
        raise invalid(field, "must be a unix time or null")
    if value <= now:
        raise invalid(field, "must be in the future")
    return float(value)


def clean_floor_fields(raw: Mapping[str, Any]) -> dict[str, Any]:
    """Check the :data:`FLOOR_FIELDS` present in ``raw``; other keys are the caller's to refuse."""
    clean: dict[str, Any] = {}
    if "name" in raw:
        clean["name"] = check_name(raw["name"])
    for key in ("width", "height"):
        if key in raw:
            clean[key] = check_int(raw[key], key, FLOOR_SIZE_MIN, FLOOR_SIZE_MAX)
    if "position" in raw:
        clean["position"] = check_int(raw["position"], "position", -POSITION_LIMIT, POSITION_LIMIT)
    return clean


def clean_room_fields(raw: Mapping[str, Any], floor: Floor, *, now: float) -> dict[str, Any]:
    """Check the :data:`ROOM_FIELDS` present in ``raw`` for a room on ``floor`` at time ``now``."""
    clean: dict[str, Any] = {}
    if "name" in raw:
        clean["name"] = check_name(raw["name"])
    if "kind" in raw:
        clean["kind"] = check_enum(RoomKind, raw["kind"], "kind")
    if "rect" in raw:
        clean["rect"] = check_rect(raw["rect"], width=floor.width, height=floor.height)
    if "door" in raw:
        clean["door"] = check_enum(DoorState, raw["door"], "door")
    if "capacity" in raw:
        clean["capacity"] = check_capacity(raw["capacity"])
    if "owners" in raw:
        clean["owners"] = check_owners(raw["owners"])
    if "expires_at" in raw:
        clean["expires_at"] = check_expires_at(raw["expires_at"], now)
    return clean


def reject_unknown(changes: Mapping[str, Any], allowed: Sequence[str]) -> None:
    """``invalid_payload`` naming the first field of ``changes`` that is not ``allowed``."""
    unknown = sorted(set(changes) - set(allowed))
    if unknown:
        raise invalid(unknown[0], f"cannot be changed here; allowed: {', '.join(allowed)}")
