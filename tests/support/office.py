"""An office of real server processes for the tests that run every case twice:
against one node, and against two nodes sharing one real Redis.

A test module declares its own module-scoped ``nodes`` fixture over
:data:`NODE_KINDS` (its log folder, key prefix and settings are its own) and
starts them with :func:`start_nodes`; its ``office`` fixture wraps them in an
:class:`Office`, which disconnects every client it made when the test ends.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from types import TracebackType
from typing import Any, Final

import aiohttp
import pytest

from presence_server.auth import mint_token
from signalling.client import OfficeClient
from tests.conftest import make_settings
from tests.support.portal import eventually
from tests.support.processes import ServerProcess
from tests.support.redis_server import RedisServer

__all__ = ["NODE_KINDS", "Office", "office_env", "start_nodes", "unique"]

#: The ``params`` of a ``nodes`` fixture: one node (memory stores), or two on one Redis.
NODE_KINDS: Final = ["one-node", "two-nodes-on-redis"]

SETTINGS: Final = make_settings()
TURN_SECRET: Final = "t" * 40


@dataclass
class Office:
    """One server, or a cluster of two; ``node`` picks where a client connects."""

    nodes: list[ServerProcess]
    clients: list[OfficeClient] = field(default_factory=list)

    async def __aenter__(self) -> Office:
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        for client in self.clients:
            await client.disconnect()

    def url(self, node: int) -> str:
        return self.nodes[node % len(self.nodes)].url

    @staticmethod
    def token(user: str, municipality: str, *, roles: tuple[str, ...] = ("staff",), name: str | None = None,
              **profile: Any) -> str:  # fmt: skip
        return mint_token(SETTINGS.auth, municipality=municipality, user_id=user, name=name or user.title(),
                          roles=roles, **profile)  # fmt: skip

    async def client(self, node: int, user: str, municipality: str, **kw: Any) -> OfficeClient:
        client = OfficeClient(self.url(node), self.token(user, municipality, **kw))
        self.clients.append(client)
        return await client.connect()

    async def rest(
        self, method: str, path: str, token: str, body: Any = None, *, node: int = 0
    ) -> tuple[int, dict[str, Any]]:
        async with aiohttp.ClientSession() as http:
            async with http.request(method, self.url(node) + path, json=body,
                                    headers={"Authorization": f"Bearer {token}"}) as resp:  # fmt: skip
                return resp.status, await resp.json()

    async def until_known_everywhere(self, path: str, token: str) -> None:
        """Wait until every node answers ``GET path`` with 200: something made on one
        node reaches the others over the bus a moment later."""

        async def known() -> bool:
            answers = [await self.rest("GET", path, token, node=n) for n in range(len(self.nodes))]
            return all(status == 200 for status, _ in answers)

        await eventually(known)


def office_env(extra: dict[str, str]) -> dict[str, str]:
    """A server's environment: a short grace, limits out of the way, TURN configured."""
    return {
        "PRESENCE_PRESENCE__GRACE_SECONDS": "0.5",
        "PRESENCE_LIMITS__EVENTS_PER_SECOND": "1000",
        "PRESENCE_LIMITS__BURST": "1000",
        "PRESENCE_ICE__TURN_SECRET": TURN_SECRET,
        "PRESENCE_ICE__TURN_URLS": '["turn:127.0.0.1:3478"]',
        "PRESENCE_LOG__LEVEL": "warning",
        **extra,
    }


@contextmanager
def start_nodes(
    request: pytest.FixtureRequest,
    tmp_path_factory: pytest.TempPathFactory,
    *,
    logs: str,
    prefix: str,
    extra: dict[str, str] | None = None,
) -> Iterator[list[ServerProcess]]:
    """Start the nodes ``request.param`` names (one of :data:`NODE_KINDS`), each
    with ``extra`` settings, logging to a fresh folder ``logs``; in the cluster,
    under a Redis key prefix of ``prefix`` and a random tail. Stops them on exit."""
    log_dir = tmp_path_factory.mktemp(logs)
    extra = extra or {}
    if request.param == "one-node":
        envs = [office_env({"PRESENCE_STORAGE__BACKEND": "memory", **extra})]
    else:
        redis: RedisServer = request.getfixturevalue("redis_server")
        key_prefix = f"{prefix}{uuid.uuid4().hex[:8]}:"
        envs = [office_env({"PRESENCE_REDIS__URL": redis.url, "PRESENCE_REDIS__PREFIX": key_prefix, **extra})] * 2
    started: list[ServerProcess] = []
    try:
        for i, env in enumerate(envs):
            started.append(ServerProcess(env, log_path=log_dir / f"node{i}.log").start())
        yield started
    finally:
        for node in started:
            node.stop()


def unique(stem: str) -> str:
    """A user id no other test uses (the servers are shared by the module)."""
    return f"{stem}.{uuid.uuid4().hex[:6]}"
