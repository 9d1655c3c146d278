"""Helpers shared by the portal tests: a fifth municipality outside the cooperation,
people with profiles, HTTP calls, and waiting for a condition with a deadline."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path
from typing import Any, Awaitable, Callable

from signalling.client import OfficeClient
from tests.conftest import DEMO_CAMPUS, OfficeServer

__all__ = ["FERNDORF_ENV", "FERNDORF_FLOOR", "person", "get", "eventually", "ferndorf_env"]

#: Ferndorf: configured for tokens, member of no cooperation. It sees none of the
#: Vier Täler and none of them see it.
FERNDORF_ENV = {
    "PRESENCE_AUTH__MUNICIPALITIES__FERNDORF__ALGORITHM": "HS256",
    "PRESENCE_AUTH__MUNICIPALITIES__FERNDORF__SECRET": "dev-only-ferndorf-secret-change-me-0000",
    "PRESENCE_LIMITS__EVENTS_PER_SECOND": "1000",
    "PRESENCE_LIMITS__BURST": "1000",
}
FERNDORF_FLOOR = "ferndorf-eg"


async def person(office: OfficeServer, user: str, municipality: str, *, name: str | None = None,
                 roles: tuple[str, ...] = ("staff",), **profile: Any) -> OfficeClient:
    """A connected client whose token carries ``profile`` (department, job_title, skills)."""
    client = OfficeClient(office.url, office.token(user, municipality, name=name, roles=roles, **profile))
    office.clients.append(client)
    return await client.connect()


async def get(office: OfficeServer, token: str, path: str, **headers: str) -> tuple[int, Any]:
    async with office.server_session(token, **headers) as http:
        async with http.get(path) as resp:
            if resp.content_type == "application/json":
                return resp.status, await resp.json()
            return resp.status, await resp.text()


async def eventually(check: Callable[[], Awaitable[Any]], *, timeout: float = 5.0) -> Any:
    """Poll ``check`` until it returns something truthy; fail after ``timeout``.
    For state only visible over HTTP (no event to wait for), such as a grace period ending."""
    deadline = time.monotonic() + timeout
    while True:
        result = await check()
        if result:
            return result
        if time.monotonic() > deadline:
            raise AssertionError(f"condition not met within {timeout}s (last: {result!r})")
        await asyncio.sleep(0.05)


_FERNDORF_SEED = """

# -- added by the portal tests: a town in no cooperation --
[[municipalities]]
id = "ferndorf"
name = "Gemeinde Ferndorf"

[[floors]]
id = "ferndorf-eg"
name = "Rathaus Ferndorf"
owner_kind = "municipality"
owner_id = "ferndorf"

  [[floors.rooms]]
  id = "ferndorf-buero"
  name = "Büro"
  kind = "office"
  rect = { x = 20, y = 20, w = 300, h = 220 }
  door = "open"
"""


def ferndorf_env(tmp_path: Path) -> dict[str, str]:
    """Server env: the demo campus plus Ferndorf (token key, campus, its own floor)."""
    seed = tmp_path / "campus_with_ferndorf.toml"
    seed.write_text(DEMO_CAMPUS.read_text(encoding="utf-8") + _FERNDORF_SEED, encoding="utf-8")
    return {**FERNDORF_ENV, "PRESENCE_CAMPUS__SEED_FILE": str(seed)}
