"""Room owners stored by release 0.1 as bare user ids become person ids at start.

``tests/data/campus-0.1.sqlite3`` is the demo campus as release 0.1 wrote it
(owners like ``"lea.lindenau"``). A bare id on a municipality's floor belongs to
that municipality; on a cooperation floor it is ambiguous, and the start stops
naming it unless ``campus.legacy_owners`` says whose it is.
"""

from __future__ import annotations

import json
import shutil
import sqlite3
from pathlib import Path

import pytest

from rooms.campus import CampusService
from rooms.person import SEPARATOR
from rooms.store_sqlite import SqliteCampusStore

RELEASE_0_1 = Path(__file__).parents[1] / "data" / "campus-0.1.sqlite3"


@pytest.fixture
def old_database(tmp_path: Path) -> Path:
    path = tmp_path / "campus.sqlite3"
    shutil.copyfile(RELEASE_0_1, path)
    return path


def stored_owners(path: Path) -> dict[str, list[str]]:
    with sqlite3.connect(path) as conn:
        return {room: json.loads(owners) for room, owners in conn.execute("SELECT id, owners FROM rooms")}


def cooperation_floor_owners(path: Path) -> set[str]:
    with sqlite3.connect(path) as conn:
        rows = conn.execute(
            "SELECT r.owners FROM rooms r JOIN floors f ON f.id = r.floor_id WHERE f.owner_kind = 'cooperation'"
        ).fetchall()
    return {owner for (owners,) in rows for owner in json.loads(owners)}


async def test_the_fixture_is_really_in_the_old_format(old_database: Path) -> None:
    owners = [o for room in stored_owners(old_database).values() for o in room]
    assert owners and not any(SEPARATOR in o for o in owners)
    assert "lea.lindenau" in cooperation_floor_owners(old_database)


async def test_bare_owners_on_a_cooperation_floor_stop_the_start_and_change_nothing(old_database: Path) -> None:
    before = stored_owners(old_database)
    service = CampusService(SqliteCampusStore(old_database))
    with pytest.raises(ValueError) as err:
        await service.start()
    message = str(err.value)
    assert "projekt-besprechung" in message and "'lea.lindenau'" in message
    assert "campus.legacy_owners" in message  # says how to resolve it
    assert stored_owners(old_database) == before  # nothing half-migrated


async def test_with_the_operators_assignments_every_owner_is_qualified_and_written_back(old_database: Path) -> None:
    # The demo's user ids end in their town ("lea.lindenau"): the operator's mapping.
    assignments = {o: o.rsplit(".", 1)[1] for o in cooperation_floor_owners(old_database)}
    service = CampusService(SqliteCampusStore(old_database))
    await service.start(legacy_owners=assignments)

    assert service.room("projekt-besprechung").owners == ("lindenau/lea.lindenau",)  # type: ignore[union-attr]
    # A town floor's bare owner belongs to that town, no assignment needed.
    assert service.room("altbach-buero-anna").owners == ("altbach/anna.altbach",)  # type: ignore[union-attr]
    await service.close()

    after = stored_owners(old_database)
    assert all(SEPARATOR in o for owners in after.values() for o in owners)
    again = CampusService(SqliteCampusStore(old_database))
    await again.start()  # nothing left to migrate: no assignments needed any more
    assert again.room("projekt-besprechung").owners == ("lindenau/lea.lindenau",)  # type: ignore[union-attr]
    await again.close()


async def test_an_assignment_does_not_override_a_municipality_floor(old_database: Path) -> None:
    # Assignments resolve ambiguity only; a town's floor already says whose the id is.
    assignments = {o: o.rsplit(".", 1)[1] for o in cooperation_floor_owners(old_database)}
    assignments["anna.altbach"] = "bergheim"
    service = CampusService(SqliteCampusStore(old_database))
    await service.start(legacy_owners=assignments)
    assert stored_owners(old_database)["altbach-buero-anna"] == ["altbach/anna.altbach"]
    await service.close()
