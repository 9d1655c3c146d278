"""The first campus: read from a TOML file and written to an empty store once.

Format (see ``config/demo_campus.toml``)::

    [[municipalities]]            # id, name
    [[cooperations]]              # id, name, members = [municipality ids]
    [[floors]]                    # id, name, owner_kind, owner_id, width, height, position
      [[floors.rooms]]            # id, name, kind, rect = {x, y, w, h}, door, capacity, owners, expires_at

Every entry is checked with the same field rules as live edits
(:mod:`rooms.validation`), and the file as a whole for consistency (unique ids,
known members and owners, rooms within their floor). Problems raise ``ValueError``
naming the file and the entry, e.g. ``floors[1] (id 'altbach-eg').rooms[2]``.
Room overlap is not checked, as it is not for live edits.
"""

from __future__ import annotations

import math
import tomllib
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final

from rooms.errors import DomainError
from rooms.model import Cooperation, Floor, Municipality, OwnerKind, Room
from rooms.person import qualify_legacy
from rooms.validation import check_enum, check_id, check_name, check_rect, clean_floor_fields, clean_room_fields

__all__ = ["CampusSeed", "load_seed"]

_MUNICIPALITY_KEYS: Final = frozenset({"id", "name"})
_COOPERATION_KEYS: Final = frozenset({"id", "name", "members"})
_FLOOR_KEYS: Final = frozenset({"id", "name", "owner_kind", "owner_id", "width", "height", "position", "rooms"})
_ROOM_KEYS: Final = frozenset({"id", "name", "kind", "rect", "door", "capacity", "owners", "expires_at"})
_TOP_KEYS: Final = frozenset({"municipalities", "cooperations", "floors"})


@dataclass(slots=True)
class CampusSeed:
    """A whole campus to start from. Build it by hand (tests) or with :func:`load_seed`."""

    municipalities: list[Municipality] = field(default_factory=list)
    cooperations: list[Cooperation] = field(default_factory=list)
    floors: list[Floor] = field(default_factory=list)
    rooms: list[Room] = field(default_factory=list)

    def check(self) -> None:
        """Raise ``ValueError`` unless ids are unique and every reference resolves.

        Checks consistency only (members, owners, floors, rooms within their
        floor); field formats are :func:`load_seed`'s job.
        """
        municipalities = _unique("municipalities", [m.id for m in self.municipalities])
        cooperations = _unique("cooperations", [c.id for c in self.cooperations])
        floors = {f.id: f for f in self.floors}
        _unique("floors", [f.id for f in self.floors])
        _unique("rooms", [r.id for r in self.rooms])
        for c in self.cooperations:
            unknown = [m for m in c.members if m not in municipalities]
            if unknown:
                raise ValueError(f"cooperation {c.id!r}: unknown member municipalities {unknown}")
        for f in self.floors:
            known = municipalities if f.owner_kind is OwnerKind.MUNICIPALITY else cooperations
            if f.owner_id not in known:
                raise ValueError(f"floor {f.id!r}: unknown {f.owner_kind.value} {f.owner_id!r}")
        for r in self.rooms:
            floor = floors.get(r.floor_id)
            if floor is None:
                raise ValueError(f"room {r.id!r}: unknown floor {r.floor_id!r}")
            try:
                check_rect(r.rect, width=floor.width, height=floor.height)
            except DomainError as exc:
                raise ValueError(f"room {r.id!r}: {exc.detail}") from None


def load_seed(path: str | Path) -> CampusSeed:
    """Read and check a campus TOML file; ``ValueError`` names the file and the entry at fault."""
    path = Path(path)
    try:
        with path.open("rb") as fh:
            doc = tomllib.load(fh)
    except tomllib.TOMLDecodeError as exc:
        raise ValueError(f"{path}: not valid TOML: {exc}") from None
    try:
        seed = _parse(doc)
        seed.check()
    except ValueError as exc:
        raise ValueError(f"{path}: {exc}") from None
    return seed


def _parse(doc: Mapping[str, Any]) -> CampusSeed:
    _no_unknown_keys("the file", doc, _TOP_KEYS)
    seed = CampusSeed()
    for where, entry in _entries(doc, "municipalities"):
        _no_unknown_keys(where, entry, _MUNICIPALITY_KEYS)
        with _blame(where):
            seed.municipalities.append(Municipality(check_id(entry.get("id"), "id"), check_name(entry.get("name"))))
    for where, entry in _entries(doc, "cooperations"):
        _no_unknown_keys(where, entry, _COOPERATION_KEYS)
        with _blame(where):
            members = entry.get("members", [])
            if not isinstance(members, list) or not all(isinstance(m, str) for m in members):
                raise ValueError("members: must be a list of municipality ids")
            seed.cooperations.append(
                Cooperation(check_id(entry.get("id"), "id"), check_name(entry.get("name")), tuple(members))
            )
    for where, entry in _entries(doc, "floors"):
        _no_unknown_keys(where, entry, _FLOOR_KEYS)
        with _blame(where):
            raw = {"name": None, "width": 1000, "height": 600, "position": 0}
            raw.update((k, v) for k, v in entry.items() if k in raw)
            floor = Floor(
                id=check_id(entry.get("id"), "id"),
                owner_kind=check_enum(OwnerKind, entry.get("owner_kind"), "owner_kind"),
                owner_id=check_id(entry.get("owner_id"), "owner_id"),
                **clean_floor_fields(raw),
            )
        seed.floors.append(floor)
        for room_where, room_entry in _entries(entry, "rooms", prefix=f"{where}."):
            _no_unknown_keys(room_where, room_entry, _ROOM_KEYS)
            with _blame(room_where):
                seed.rooms.append(_parse_room(room_entry, floor))
    return seed


def _parse_room(entry: Mapping[str, Any], floor: Floor) -> Room:
    # Required fields default to None so that their check, not a TypeError, reports them.
    raw: dict[str, Any] = {"name": None, "kind": None, "rect": None, "door": "open", "capacity": 8, "owners": []}
    raw.update((k, v) for k, v in entry.items() if k != "id")
    if isinstance(raw["owners"], list):
        # Seeds written for release 0.1 list bare user ids: on a municipality's floor
        # they are that municipality's people; on a cooperation floor they must be qualified.
        home = floor.owner_id if floor.owner_kind is OwnerKind.MUNICIPALITY else None
        raw["owners"] = [qualify_legacy(o, floor_municipality=home) if isinstance(o, str) else o for o in raw["owners"]]
    # A seed is written once; "in the future" would make the file rot. Any time goes.
    clean = clean_room_fields(raw, floor, now=-math.inf)
    return Room(id=check_id(entry.get("id"), "id"), floor_id=floor.id, **clean)


def _entries(doc: Mapping[str, Any], key: str, *, prefix: str = "") -> list[tuple[str, Mapping[str, Any]]]:
    """``(where, entry)`` pairs of an array of tables, ``where`` naming the entry for errors."""
    items = doc.get(key, [])
    if not isinstance(items, list):
        raise ValueError(f"{prefix}{key}: must be an array of tables ([[{key}]])")
    out: list[tuple[str, Mapping[str, Any]]] = []
    for i, item in enumerate(items):
        where = f"{prefix}{key}[{i}]"
        if not isinstance(item, Mapping):
            raise ValueError(f"{where}: must be a table")
        if isinstance(item.get("id"), str):
            where += f" (id {item['id']!r})"
        out.append((where, item))
    return out


def _no_unknown_keys(where: str, entry: Mapping[str, Any], allowed: frozenset[str]) -> None:
    # Strict, because a typo ("capacty") would otherwise silently become a default.
    unknown = sorted(set(entry) - allowed)
    if unknown:
        raise ValueError(f"{where}: unknown keys {unknown}; allowed: {sorted(allowed)}")


@contextmanager
def _blame(where: str) -> Iterator[None]:
    """Turns a field error inside the block into ``ValueError("<where>: <field>: <problem>")``."""
    try:
        yield
    except DomainError as exc:
        raise ValueError(f"{where}: {exc.detail}") from None
    except ValueError as exc:
        raise ValueError(f"{where}: {exc}") from None


def _unique(what: str, ids: list[str]) -> set[str]:
    seen: set[str] = set()
    for id_ in ids:
        if id_ in seen:
            raise ValueError(f"{what}: duplicate id {id_!r}")
        seen.add(id_)
    return seen
