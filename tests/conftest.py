"""Shared fixtures: a real server (in-process, on a real loopback port) and tokens.

Protocol tests talk to it through real python-socketio clients over WebSocket;
nothing in between is mocked.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path
import uuid
from typing import Any, AsyncIterator, Awaitable, Callable, Iterator, Sequence

import aiohttp
import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer

from presence_server.app import build_app
from presence_server.auth import mint_token
from presence_server.config import Settings, load_settings
from presence_server.runtime import RUNTIME, Runtime
from signalling.client import OfficeClient
from tests.support.redis_server import RedisServer

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_CONFIG = ROOT / "config" / "default.toml"
DEMO_CAMPUS = ROOT / "config" / "demo_campus.toml"


def make_settings(env: dict[str, str] | None = None) -> Settings:
    """The development defaults, in memory, with the demo campus and test overrides."""
    base = {
        "PRESENCE_STORAGE__BACKEND": "memory",
        "PRESENCE_CAMPUS__SEED_FILE": str(DEMO_CAMPUS),
        "PRESENCE_LOG__LEVEL": "warning",
    }
    return load_settings(DEFAULT_CONFIG, env={**base, **(env or {})})


@dataclass
class OfficeServer:
    server: TestServer
    settings: Settings
    clients: list[OfficeClient] = field(default_factory=list)

    @property
    def url(self) -> str:
        return str(self.server.make_url("/")).rstrip("/")

    @property
    def runtime(self) -> Runtime:
        return self.server.app[RUNTIME]

    def token(
        self,
        user: str,
        municipality: str,
        *,
        name: str | None = None,
        roles: Sequence[str] = ("staff",),
        ttl: int = 3600,
        now: float | None = None,
        **profile: Any,
    ) -> str:
        return mint_token(
            self.settings.auth,
            municipality=municipality,
            user_id=user,
            name=name or user.split(".")[0].title(),
            roles=roles,
            ttl_seconds=ttl,
            now=now,
            **profile,
        )

    def server_session(self, token: str | None = None, **headers: str) -> aiohttp.ClientSession:
        """An HTTP session against this server, with a Bearer token if given."""
        if token:
            headers["Authorization"] = f"Bearer {token}"
        return aiohttp.ClientSession(base_url=self.url, headers=headers)

    async def client(self, user: str, municipality: str, *, connect: bool = True, **kw: Any) -> OfficeClient:
        roles = kw.pop("roles", ("staff",))
        client = OfficeClient(self.url, self.token(user, municipality, roles=roles), **kw)
        self.clients.append(client)
        if connect:
            await client.connect()
        return client


StartServer = Callable[..., Awaitable[OfficeServer]]


@pytest.fixture
async def start_server() -> AsyncIterator[StartServer]:
    """Factory: ``await start_server(env={...})`` runs a server until the test ends."""
    running: list[OfficeServer] = []

    async def start(env: dict[str, str] | None = None, settings: Settings | None = None) -> OfficeServer:
        settings = settings or make_settings(env)
        server = TestServer(build_app(settings), host="127.0.0.1")
        await server.start_server()
        office = OfficeServer(server, settings)
        running.append(office)
        return office

    yield start
    for office in reversed(running):
        for client in office.clients:
            await client.disconnect()
        await office.server.close()


@pytest.fixture(scope="session")
def redis_server() -> Iterator[RedisServer]:
    """One real redis-server for the whole run; tests use unique key prefixes."""
    server = RedisServer().start()
    yield server
    server.cleanup()


@pytest.fixture
def redis_prefix(request: pytest.FixtureRequest) -> str:
    """A key prefix no other test uses."""
    return f"t{uuid.uuid4().hex[:10]}:"


@pytest.fixture
async def office(start_server: StartServer) -> OfficeServer:
    """A server with the demo campus and a short grace period."""
    return await start_server({"PRESENCE_PRESENCE__GRACE_SECONDS": "0.3"})


@pytest.fixture(scope="session", autouse=True)
def ice_on_loopback_only_machines() -> Iterator[None]:
    """aioice never offers 127.0.0.1 as a host candidate, so on a machine (or CI
    runner) with no interface but loopback, two aiortc peers find no path. Only
    there, loopback is offered; everywhere else ICE runs untouched."""
    import aioice.ice

    original = aioice.ice.get_host_addresses
    if original(True, False) or original(False, True):
        yield
        return
    aioice.ice.get_host_addresses = lambda use_ipv4, use_ipv6: ["127.0.0.1"] if use_ipv4 else []
    try:
        yield
    finally:
        aioice.ice.get_host_addresses = original
