"""A cooperation to load-test: who works where, and how they behave.

A scenario file (``loadtests/scenarios/*.toml``) describes the cooperation
(municipalities, their staff and floors, the shared project floors) and the
working day (task weights, think times). From it this module derives, for one
run, everything both sides must agree on:

* the **staff**: one identity per person, ``<municipality>.<nnnn>``, with a home
  floor, whether they work on the project floors, and whether they are *active*
  (simulated by a locust user, the full protocol) or *held by the swarm*
  (online, on their home floor's hallway, watching it, lightly active);
* the server's **campus seed** (``campus.toml``, the format of ``rooms/seed.py``)
  and **configuration** (``server.toml``): production-like, ``dev_mode`` off, a
  fresh random HS256 secret per municipality that the load generators read to
  mint each simulated user's token, in-memory storage, quiet logs.

Pure apart from :func:`load_scenario` and :func:`write_run_files`; deterministic
(same file, same ``active`` count: same staff, same campus).

    python loadtests/scenario.py prepare loadtests/scenarios/cooperation.toml /tmp/office
"""

from __future__ import annotations

import json
import secrets
import sys
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final, Sequence

__all__ = [
    "Behaviour",
    "Municipality",
    "Scenario",
    "Staff",
    "SCENARIOS",
    "load_scenario",
    "write_run_files",
    "STAMP_MARK",
]

SCENARIOS: Final = Path(__file__).resolve().parent / "scenarios"
#: Separates a human-looking status text or knock message from the send time it
#: carries: ``"Im Termin @1790000000.123456"``. Every watcher reads it back.
STAMP_MARK: Final = " @"

_FIRST: Final = ("Anna", "Ben", "Clara", "David", "Emma", "Felix", "Greta", "Hannes", "Ida", "Jonas", "Klara",
                 "Lukas", "Mia", "Noah", "Olga", "Paul", "Rosa", "Sven", "Tina", "Uwe", "Vera", "Wim")
_LAST: Final = ("Albrecht", "Becker", "Claasen", "Dietz", "Engel", "Fischer", "Graf", "Hahn", "Imhof", "Jung",
                "Keller", "Lorenz", "Maier", "Neumann", "Otto", "Peters", "Roth", "Schulz", "Thiel", "Vogel")
_DEFAULT_WEIGHTS: Final = {"walk": 10, "status": 6, "watch": 2, "knock": 3, "ring": 2, "room_call": 1, "reconnect": 1}


@dataclass(frozen=True, slots=True)
class Municipality:
    id: str
    name: str
    staff: int
    floors: int


@dataclass(frozen=True, slots=True)
class Staff:
    """One person. ``index`` is their place in :attr:`Scenario.staff`."""

    index: int
    user_id: str
    name: str
    municipality: str
    home_floor: str
    project: bool  # also works on (and watches) the cooperation's project floors
    active: bool  # a locust user; otherwise held by the swarm

    @property
    def person(self) -> str:
        """Their person id, ``"municipality/user_id"``: how the server names them on the
        wire and in room owners (a user id is unique only within its town)."""
        return f"{self.municipality}/{self.user_id}"


@dataclass(frozen=True, slots=True)
class Behaviour:
    """The working day of an active user (a locust user)."""

    weights: dict[str, int]
    think_time: tuple[float, float]  # seconds between two tasks, uniform
    answer_delay: tuple[float, float]  # before answering a knock or a ring
    admit_share: float  # knocks admitted (the rest declined)
    accept_share: float  # rings accepted
    call_seconds: tuple[float, float]  # how long a call lasts
    knock_wait: float  # a knock unanswered this long is withdrawn (knock.cancel)
    ack_timeout: float  # an acknowledgement later than this is a failure
    swarm_status_every: float  # seconds between two stamped status changes of one swarm connection


@dataclass(frozen=True, slots=True)
class Scenario:
    name: str
    description: str
    cooperation_id: str
    cooperation_name: str
    project_floors: int
    project_share: float
    municipalities: tuple[Municipality, ...]
    rooms_per_floor: int
    active: int  # active users (locust); the rest of the staff are the swarm's
    behaviour: Behaviour
    staff: tuple[Staff, ...] = field(default=(), repr=False)

    # ------------------------------------------------------------- derived
    @property
    def total_staff(self) -> int:
        return len(self.staff)

    def active_staff(self) -> list[Staff]:
        """Active users in the order locust users take them: interleaved over the
        municipalities, so any number of users spreads over every town."""
        return [s for s in self.staff if s.active]

    def swarm_staff(self) -> list[Staff]:
        """Everyone else, municipality by municipality (a region that grows town by town)."""
        return [s for s in self.staff if not s.active]

    def project_floor_ids(self) -> list[str]:
        return [f"{self.cooperation_id}-projekt-{k + 1}" for k in range(self.project_floors)]

    def floor_ids(self, municipality: str) -> list[str]:
        m = next(m for m in self.municipalities if m.id == municipality)
        return [f"{m.id}-og{k}" for k in range(m.floors)]

    def visible_floors(self, municipality: str) -> list[str]:
        return self.floor_ids(municipality) + self.project_floor_ids()

    def with_active(self, active: int) -> Scenario:
        """The same cooperation with ``active`` locust users (``0 <= active <= total``)."""
        return _build(self, active)

    # ------------------------------------------------------------- the campus
    def rooms(self, floor_id: str) -> list[dict[str, Any]]:
        """The rooms of one floor, as seed entries (a pure function of the scenario)."""
        project = floor_id in self.project_floor_ids()
        people = [s for s in self.staff if (s.project if project else s.home_floor == floor_id)]
        owners = [s.person for s in people if s.active] or [s.person for s in people]  # qualified: project floors mix towns
        n = max(4, self.rooms_per_floor)
        per_row = (n + 1) // 2
        width = 960 // per_row
        kinds: list[tuple[str, str, str, int]] = [  # kind, door, name, capacity
            ("project" if project else "service_counter", "open", "Projektraum" if project else "Bürgerbüro", 30),
            ("lounge", "open", "Teeküche", 20),
            ("meeting", "closed", "Besprechung", 12),
        ]
        while len(kinds) < n:
            k = len(kinds)
            kinds.append(("meeting", "closed", f"Besprechung {k}", 12) if k % 5 == 0
                         else ("office", "closed", f"Büro {k}", 4))
        rooms = []
        for k, (kind, door, name, capacity) in enumerate(kinds[:n]):
            row, col = divmod(k, per_row)
            room_owners = [owners[(k * 2 + j) % len(owners)] for j in range(2)] if owners and door == "closed" else []
            rooms.append({
                "id": f"{floor_id}-r{k:02d}", "name": name, "kind": kind, "door": door, "capacity": capacity,
                "rect": {"x": 20 + col * width, "y": 20 if row == 0 else 360, "w": width, "h": 220},
                "owners": sorted(set(room_owners)),
            })
        return rooms

    def campus_toml(self) -> str:
        """The campus seed (``rooms/seed.py`` format)."""
        out = [f"# Generated by loadtests/scenario.py from the scenario {self.name!r}. Do not edit.", ""]
        for m in self.municipalities:
            out += ["[[municipalities]]", f"id = {_q(m.id)}", f"name = {_q(m.name)}", ""]
        out += ["[[cooperations]]", f"id = {_q(self.cooperation_id)}", f"name = {_q(self.cooperation_name)}",
                f"members = {json.dumps([m.id for m in self.municipalities])}", ""]
        floors = [(f, "cooperation", self.cooperation_id, k + 1, f"Projektetage {k + 1}")
                  for k, f in enumerate(self.project_floor_ids())]
        for m in self.municipalities:
            floors += [(f, "municipality", m.id, k, f"{m.name} – {k}. OG") for k, f in enumerate(self.floor_ids(m.id))]
        for floor_id, owner_kind, owner_id, position, name in floors:
            out += ["[[floors]]", f"id = {_q(floor_id)}", f"name = {_q(name)}", f"owner_kind = {_q(owner_kind)}",
                    f"owner_id = {_q(owner_id)}", "width = 1000", "height = 600", f"position = {position}", ""]
            for r in self.rooms(floor_id):
                rect = r["rect"]
                out += ["  [[floors.rooms]]", f"  id = {_q(r['id'])}", f"  name = {_q(r['name'])}",
                        f"  kind = {_q(r['kind'])}", f"  door = {_q(r['door'])}", f"  capacity = {r['capacity']}",
                        f"  rect = {{ x = {rect['x']}, y = {rect['y']}, w = {rect['w']}, h = {rect['h']} }}",
                        f"  owners = {json.dumps(r['owners'])}", ""]
        return "\n".join(out)

    def server_toml(self, campus_path: Path, *, secrets_by_municipality: dict[str, str]) -> str:
        """A production-like server configuration for this campus (no ``dev_mode``)."""
        out = [
            f"# Generated by loadtests/scenario.py for the scenario {self.name!r}: throwaway secrets, loopback only.",
            "dev_mode = false", "",
            "[http]", 'host = "127.0.0.1"', "cors_origins = []", "",
            "[log]", 'level = "warning"', 'format = "console"', "",
            "[storage]", 'backend = "memory"', "",
            "[campus]", f"seed_file = {_q(str(campus_path))}", "",
            "[auth]", "max_token_ttl_seconds = 86400", "",
        ]
        for m in self.municipalities:
            out += [f"[auth.municipalities.{m.id}]", 'algorithm = "HS256"',
                    f"secret = {_q(secrets_by_municipality[m.id])}", ""]
        return "\n".join(out)


def _q(s: str) -> str:
    return json.dumps(s, ensure_ascii=False)  # a JSON string is a valid TOML basic string


# ------------------------------------------------------------------ loading


def load_scenario(path: str | Path, *, active: int | None = None) -> Scenario:
    """Read a scenario file; ``active`` overrides its ``population.active``.
    ``ValueError`` names the file and the problem."""
    path = Path(path)
    if not path.exists() and (SCENARIOS / f"{path}.toml").exists():
        path = SCENARIOS / f"{path}.toml"  # a bare name: one of ours
    try:
        doc = tomllib.loads(path.read_text(encoding="utf-8"))
        return _build(_parse(doc), active)
    except (KeyError, TypeError, ValueError) as exc:
        raise ValueError(f"{path}: {exc}") from None


def _pair(value: Any, name: str) -> tuple[float, float]:
    lo, hi = (float(v) for v in value)
    if not 0 <= lo <= hi:
        raise ValueError(f"{name}: need [low, high] with 0 <= low <= high")
    return lo, hi


def _parse(doc: dict[str, Any]) -> Scenario:
    coop = doc["cooperation"]
    munis = tuple(Municipality(str(m["id"]), str(m["name"]), int(m["staff"]), int(m.get("floors", 1)))
                  for m in doc["municipalities"])
    if not munis or any(m.staff < 1 or m.floors < 1 for m in munis):
        raise ValueError("municipalities: each needs staff >= 1 and floors >= 1")
    b = doc.get("behaviour", {})
    weights = dict(_DEFAULT_WEIGHTS)
    unknown = set(b.get("weights", {})) - set(_DEFAULT_WEIGHTS)
    if unknown:
        raise ValueError(f"behaviour.weights: unknown tasks {sorted(unknown)}; known: {sorted(_DEFAULT_WEIGHTS)}")
    weights.update({k: int(v) for k, v in b.get("weights", {}).items()})
    behaviour = Behaviour(
        weights=weights,
        think_time=_pair(b.get("think_time", [5, 30]), "behaviour.think_time"),
        answer_delay=_pair(b.get("answer_delay", [0.2, 1.5]), "behaviour.answer_delay"),
        admit_share=float(b.get("admit_share", 0.85)),
        accept_share=float(b.get("accept_share", 0.8)),
        call_seconds=_pair(b.get("call_seconds", [5, 20]), "behaviour.call_seconds"),
        knock_wait=float(b.get("knock_wait", 10)),
        ack_timeout=float(b.get("ack_timeout", 10)),
        swarm_status_every=float(doc.get("population", {}).get("swarm_status_every", 120)),
    )
    return Scenario(
        name=str(doc.get("name", "unnamed")),
        description=str(doc.get("description", "")).strip(),
        cooperation_id=str(coop["id"]),
        cooperation_name=str(coop["name"]),
        project_floors=int(coop.get("project_floors", 1)),
        project_share=float(coop.get("project_share", 0.25)),
        municipalities=munis,
        rooms_per_floor=int(doc.get("floors", {}).get("rooms", 10)),
        active=int(doc.get("population", {}).get("active", 0)),
        behaviour=behaviour,
    )


def _build(base: Scenario, active: int | None) -> Scenario:
    """Assign identities, home floors and the active share.

    The active users are the first ``ceil(active / M)`` people of each of the M
    municipalities (fewer where a town runs out), interleaved; the rest belong to
    the swarm. Home floors are dealt round-robin within a town; every
    ``1 / project_share``-th person also works on the project floors.
    """
    active = base.active if active is None else active
    total = sum(m.staff for m in base.municipalities)
    if not 0 <= active <= total:
        raise ValueError(f"population.active must be between 0 and the staff ({total})")
    every = max(1, round(1 / base.project_share)) if base.project_share > 0 else 0
    # Which (municipality, n) are active: deal `active` over the towns round-robin.
    quota = {m.id: 0 for m in base.municipalities}
    left, k = active, 0
    while left:
        m = base.municipalities[k % len(base.municipalities)]
        if quota[m.id] < m.staff:
            quota[m.id] += 1
            left -= 1
        k += 1
    people: list[tuple[int, int, Staff]] = []  # (order key...) -> staff
    for mi, m in enumerate(base.municipalities):
        floors = [f"{m.id}-og{j}" for j in range(m.floors)]
        for n in range(m.staff):
            first, last = _FIRST[(n + mi) % len(_FIRST)], _LAST[(n * 7 + mi) % len(_LAST)]
            people.append((mi, n, Staff(
                index=-1, user_id=f"{m.id}.{n:04d}", name=f"{first} {last} ({m.name})", municipality=m.id,
                home_floor=floors[n % len(floors)], project=bool(every) and n % every == 0, active=n < quota[m.id],
            )))
    active_people = sorted((p for p in people if p[2].active), key=lambda p: (p[1], p[0]))  # interleaved
    swarm_people = [p for p in people if not p[2].active]  # town by town
    staff = tuple(
        Staff(i, s.user_id, s.name, s.municipality, s.home_floor, s.project, s.active)
        for i, (_, _, s) in enumerate(active_people + swarm_people)
    )
    return Scenario(**{**{f: getattr(base, f) for f in base.__dataclass_fields__}, "active": active, "staff": staff})


def write_run_files(scenario: Scenario, directory: Path) -> tuple[Path, Path]:
    """Write ``campus.toml`` and ``server.toml`` (fresh secrets) into ``directory``;
    return (server config, campus seed). The config is only readable by its owner."""
    directory.mkdir(parents=True, exist_ok=True)
    campus = directory / "campus.toml"
    campus.write_text(scenario.campus_toml(), encoding="utf-8")
    keys = {m.id: secrets.token_urlsafe(36) for m in scenario.municipalities}
    server = directory / "server.toml"
    server.touch(mode=0o600)
    server.write_text(scenario.server_toml(campus, secrets_by_municipality=keys), encoding="utf-8")
    return server, campus


def main(argv: Sequence[str] | None = None) -> int:
    import argparse

    p = argparse.ArgumentParser(description="Write the campus seed and server config of a scenario.")
    sub = p.add_subparsers(dest="cmd", required=True)
    prep = sub.add_parser("prepare", help="write campus.toml and server.toml into a directory")
    prep.add_argument("scenario", help="scenario file or name (cooperation, smoke, region)")
    prep.add_argument("directory", type=Path)
    prep.add_argument("--active", type=int, default=None, help="active (locust) users; default: the file's")
    args = p.parse_args(argv)
    scenario = load_scenario(args.scenario, active=args.active)
    server, campus = write_run_files(scenario, args.directory)
    print(f"{scenario.total_staff} staff ({scenario.active} active) in {len(scenario.municipalities)} municipalities")
    print(f"server config: {server}\ncampus seed:   {campus}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
