"""Campus state survives a restart of the real server process on the same database."""

from __future__ import annotations

import signal
from pathlib import Path

import aiohttp
import pytest

from presence_server.auth import mint_token
from signalling.client import OfficeClient
from tests.conftest import make_settings
from tests.support.processes import ServerProcess

pytestmark = pytest.mark.slow


async def test_a_room_created_at_runtime_is_still_there_after_a_restart(tmp_path: Path) -> None:
    db = tmp_path / "campus.sqlite3"
    env = {"PRESENCE_STORAGE__BACKEND": "sqlite", "PRESENCE_STORAGE__SQLITE_PATH": str(db)}
    settings = make_settings()
    admin = mint_token(settings.auth, municipality="altbach", user_id="anna.altbach", name="Anna",
                       roles=("staff", "admin"))
    body = {"name": "Projektraum Glasfaser", "kind": "project", "door": "closed", "capacity": 6,
            "owners": ["altbach/anna.altbach"], "rect": {"x": 700, "y": 360, "w": 280, "h": 220}}
    headers = {"Authorization": f"Bearer {admin}"}

    first = ServerProcess(env, log_path=tmp_path / "first.log").start()
    try:
        async with aiohttp.ClientSession(first.url, headers=headers) as http:
            async with http.post("/api/v1/floors/altbach-eg/rooms", json=body) as resp:
                assert resp.status == 201, await resp.text()
                created = (await resp.json())["room"]
                assert created["owners"] == ["altbach/anna.altbach"]
            async with http.patch("/api/v1/rooms/altbach-teekueche", json={"door": "locked"}) as resp:
                assert resp.status == 200
    finally:
        assert first.stop(signal.SIGTERM) == 0  # a clean, graceful stop

    second = ServerProcess(env, log_path=tmp_path / "second.log").start()
    try:
        async with aiohttp.ClientSession(second.url, headers=headers) as http:
            async with http.get(f"/api/v1/rooms/{created['id']}") as resp:
                assert resp.status == 200
                assert (await resp.json())["room"] == created
        # And it is live for clients of the new process, seeded floor and all.
        client = OfficeClient(second.url, admin)
        await client.connect()
        try:
            view = await client.watch("altbach-eg")
            assert view.rooms[created["id"]]["name"] == "Projektraum Glasfaser"
            assert view.rooms["altbach-teekueche"]["door"] == "locked"
            assert len(view.rooms) == 7  # six seeded (not seeded twice) plus the new one
        finally:
            await client.disconnect()
    finally:
        assert second.stop(signal.SIGTERM) == 0
