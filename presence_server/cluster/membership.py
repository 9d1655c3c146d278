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

It talks to Redis over the node's shared :class:`~rooms.redis_link.RedisLink`
and learns a node's sessions from the presence store's cluster side
(:class:`~presence_server.presence.store.ClusterPresenceStore`). Both loops
(heartbeat, reaper) run supervised; a Redis outage only skips a round.
"""

from __future__ import annotations

import asyncio
from typing import Awaitable, Callable, Final

import structlog

from presence_server.presence.store import ClusterPresenceStore
from presence_server.supervise import Loop, supervised
from presence_server.tasks import cancel_and_wait
from rooms.errors import StoreUnavailable
from rooms.person import PersonId
from rooms.redis_link import RedisLink, as_text

__all__ = ["Membership", "DeadSession", "DeadLinger"]

log = structlog.get_logger(__name__)

#: ``on_dead_session(node, person, sid)``: remove a session a dead node held.
DeadSession = Callable[[str, PersonId, str], Awaitable[None]]
#: ``on_dead_linger(person, since)``: end a grace period a dead node had started.
DeadLinger = Callable[[PersonId, float], Awaitable[None]]


class Membership:
    """This node's heartbeat, and the reaping of nodes whose heartbeat stopped."""

    def __init__(
        self,
        redis: RedisLink,
        *,
        prefix: str,
        node_id: str,
        sessions: ClusterPresenceStore,
        heartbeat: float = 1.0,
        ttl: float = 5.0,
        check: float = 2.0,
    ) -> None:
        self.node_id: Final = node_id
        self._link = redis
        self._prefix = prefix
        self._sessions = sessions
        self._heartbeat = heartbeat
        self._ttl = ttl
        self._check = check
        self._on_dead_session: DeadSession | None = None
        self._on_dead_linger: DeadLinger | None = None
        self._tasks: list[asyncio.Task[None]] = []
        self.reaped: list[str] = []  # node ids this node reaped (for metrics and tests)

    def _key(self, *parts: str) -> str:
        return self._prefix + ":".join(parts)

    async def start(self, *, on_dead_session: DeadSession, on_dead_linger: DeadLinger) -> None:
        """Announce this node (one heartbeat now), then beat and look for dead nodes."""
        self._on_dead_session, self._on_dead_linger = on_dead_session, on_dead_linger
        await self._link.open()  # shared: already open in a running node
        await self._beat()
        self._tasks = [
            supervised("cluster_heartbeat", self._every(self._heartbeat, self._beat)),
            supervised("cluster_reaper", self._every(self._check, self._reap_dead)),
        ]

    async def close(self, *, handover_seconds: float) -> None:
        """Stop heartbeating; the survivors reap this node ``handover_seconds`` from now."""
        for task in self._tasks:
            await cancel_and_wait(task)
        self._tasks = []
        if self._link.is_open:
            try:
                ttl_ms = max(1, int(handover_seconds * 1000))
                await self._link.client.set(self._key("node", self.node_id, "alive"), "draining", px=ttl_ms)
            except StoreUnavailable:
                log.warning("cluster_handover_failed", node=self.node_id)  # reaped after the TTL anyway

    def _every(self, period: float, job: Callable[[], Awaitable[None]]) -> Loop:
        async def loop() -> None:
            while True:
                await asyncio.sleep(period)
                try:
                    await job()
                except StoreUnavailable as exc:  # Redis away: the bus reports it; try again
                    log.debug("cluster_membership_store_unavailable", error=str(exc))

        return loop

    async def _beat(self) -> None:
        pipe = self._link.client.pipeline(transaction=False)
        pipe.set(self._key("node", self.node_id, "alive"), "1", px=int(self._ttl * 1000))
        pipe.sadd(self._key("nodes"), self.node_id)
        await pipe.execute()

    async def _reap_dead(self) -> None:
        client = self._link.client
        for raw in await client.smembers(self._key("nodes")):
            node = as_text(raw)
            if node == self.node_id or await client.exists(self._key("node", node, "alive")):
                continue
            # Exactly one survivor reaps: the one that sets the flag first.
            if not await client.set(self._key("node", node, "reaper"), self.node_id, nx=True, ex=60):
                continue
            await self._reap(node)
            await client.srem(self._key("nodes"), node)
            self.reaped.append(node)

    async def _reap(self, node: str) -> None:
        assert self._on_dead_session is not None and self._on_dead_linger is not None, "start() first"
        sessions = await self._sessions.node_sessions(node)
        lingering = await self._sessions.node_lingering(node)
        log.warning("cluster_node_dead", node=node, sessions=len(sessions), lingering=len(lingering))
        for person, sid in sessions:
            await self._on_dead_session(node, person, sid)
        for person, since in lingering:  # grace periods the dead node would have ended
            await self._on_dead_linger(person, since)
        await self._sessions.forget_node(node)
