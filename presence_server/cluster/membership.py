"""Who is in the cluster, and cleaning up after a node that died.

Every node refreshes ``node:<id>:alive`` (TTL ``ttl``) every ``heartbeat``
seconds and is listed in ``nodes``. Every ``check`` seconds each node looks for
listed nodes whose ``alive`` key has expired; for each, the first survivor to
``SET node:<id>:reaper NX`` reaps it - exactly one - by removing every session
the dead node held through ``on_dead_session`` and ending the grace periods it
had started through ``on_dead_linger``; the presence store then publishes each
leave once. With the defaults a node killed without warning is
gone from every view within ttl + check + the reaping itself: about 7 s.

A node that stops (SIGTERM) drains: its sessions were closed, their users
linger for the grace period like a page reload, and :meth:`close` hands over
by letting ``alive`` live exactly that long more. Whoever of them reconnects to
another node in time is simply back; for the others a survivor reaps the node
when ``alive`` expires and ends the grace periods it had started.
"""

from __future__ import annotations

import asyncio
from typing import Awaitable, Callable, Protocol

import redis.asyncio as aioredis
import structlog
from redis.exceptions import RedisError

from presence_server.tasks import cancel_and_wait
from rooms.person import PersonId

__all__ = ["Membership", "NodeSessions"]

log = structlog.get_logger(__name__)


class NodeSessions(Protocol):
    async def node_sessions(self, node_id: str) -> list[tuple[PersonId, str]]:
        """(person, session id) of every session the node registered."""

    async def node_lingering(self, node_id: str) -> list[tuple[PersonId, float]]:
        """(person, since) of the grace periods the node had started."""

    async def forget_node(self, node_id: str) -> None:
        """Drop the node's lists (after its sessions were removed)."""


class Membership:
    def __init__(
        self,
        url: str,
        *,
        prefix: str,
        node_id: str,
        sessions: NodeSessions,
        on_dead_session: Callable[[str, PersonId, str], Awaitable[None]],
        on_dead_linger: Callable[[PersonId, float], Awaitable[None]],
        heartbeat: float = 1.0,
        ttl: float = 5.0,
        check: float = 2.0,
    ) -> None:
        self.node_id = node_id
        self._url = url
        self._prefix = prefix
        self._sessions = sessions
        self._on_dead_session = on_dead_session
        self._on_dead_linger = on_dead_linger
        self._heartbeat = heartbeat
        self._ttl = ttl
        self._check = check
        self._client: aioredis.Redis | None = None
        self._tasks: list[asyncio.Task[None]] = []
        self.reaped: list[str] = []  # node ids this node reaped (for metrics and tests)

    def _key(self, *parts: str) -> str:
        return self._prefix + ":".join(parts)

    async def start(self) -> None:
        self._client = aioredis.from_url(self._url, decode_responses=True)
        await self._beat()
        self._tasks = [
            asyncio.create_task(self._every(self._heartbeat, self._beat), name="cluster-heartbeat"),
            asyncio.create_task(self._every(self._check, self._reap_dead), name="cluster-reaper"),
        ]

    async def close(self, *, handover_seconds: float) -> None:
        """Stop heartbeating; the survivors reap this node ``handover_seconds`` from now."""
        for task in self._tasks:
            await cancel_and_wait(task)
        self._tasks = []
        if self._client is not None:
            try:
                ttl_ms = max(1, int(handover_seconds * 1000))
                await self._client.set(self._key("node", self.node_id, "alive"), "draining", px=ttl_ms)
            except RedisError:
                log.warning("cluster_handover_failed", node=self.node_id)  # reaped after the TTL anyway
            await self._client.aclose()
            self._client = None

    async def _every(self, period: float, job: Callable[[], Awaitable[None]]) -> None:
        while True:
            await asyncio.sleep(period)
            try:
                await job()
            except (RedisError, OSError) as exc:  # Redis away: the bus reports it; try again
                log.debug("cluster_membership_redis_error", error=str(exc))
            except Exception:
                log.exception("cluster_membership_failed")

    async def _beat(self) -> None:
        assert self._client is not None
        pipe = self._client.pipeline(transaction=False)
        pipe.set(self._key("node", self.node_id, "alive"), "1", px=int(self._ttl * 1000))
        pipe.sadd(self._key("nodes"), self.node_id)
        await pipe.execute()

    async def _reap_dead(self) -> None:
        assert self._client is not None
        for node in await self._client.smembers(self._key("nodes")):
            if node == self.node_id or await self._client.exists(self._key("node", node, "alive")):
                continue
            # Exactly one survivor reaps: the one that sets the flag first.
            if not await self._client.set(self._key("node", node, "reaper"), self.node_id, nx=True, ex=60):
                continue
            sessions = await self._sessions.node_sessions(node)
            lingering = await self._sessions.node_lingering(node)
            log.warning("cluster_node_dead", node=node, sessions=len(sessions), lingering=len(lingering))
            for person, sid in sessions:
                await self._on_dead_session(node, person, sid)
            for person, since in lingering:  # grace periods the dead node would have ended
                await self._on_dead_linger(person, since)
            await self._sessions.forget_node(node)
            await self._client.srem(self._key("nodes"), node)
            self.reaped.append(node)
