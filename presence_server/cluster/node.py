"""This process as a member of a cluster: the bus, what travels on it, and membership.

Starts and stops the bus and membership the backends made, publishes the
campus changes made here on the ``campus`` channel, takes in those made
elsewhere, and hands floor and user messages to the :class:`ClusterTransport`.
Campus changes are applied in the order received, one at a time. When
membership finds a dead node, its sessions are removed through the presence
store's cluster side and the presence service tells everyone.
"""

from __future__ import annotations

import asyncio
import os
import secrets
import socket
import time
from typing import TYPE_CHECKING, Any, Awaitable, Callable

import structlog

from presence_server.cluster.transport import ClusterTransport
from presence_server.presence.service import PresenceService
from presence_server.presence.store import ClusterPresenceStore
from presence_server.supervise import supervised
from presence_server.tasks import cancel_and_wait
from rooms.campus import CampusService
from rooms.changes import CampusChange
from rooms.person import PersonId

if TYPE_CHECKING:
    from presence_server.backends import ClusterBackends

__all__ = ["ClusterNode", "new_node_id"]

log = structlog.get_logger(__name__)

CAMPUS_CHANNEL = "campus"


def new_node_id() -> str:
    """Unique per process start: a restarted node is a new member."""
    return f"{socket.gethostname()}-{os.getpid()}-{secrets.token_hex(3)}"


class ClusterNode:
    def __init__(
        self,
        backends: ClusterBackends,
        transport: ClusterTransport,
        campus: CampusService,
        presence: PresenceService,
        *,
        on_state: Callable[[bool], Awaitable[None]],
    ) -> None:
        self.bus = backends.bus
        self.membership = backends.membership
        #: The presence store's cluster side: the sessions each node registered.
        self.store: ClusterPresenceStore = backends.presence
        self.transport = transport
        self._presence = presence
        self._campus = campus
        self._on_state = on_state
        self._campus_inbox: asyncio.Queue[CampusChange] = asyncio.Queue()
        self._campus_task: asyncio.Task[None] | None = None
        campus.add_listener(self)

    @property
    def node_id(self) -> str:
        return self.bus.node_id

    async def start(self) -> None:
        await self.bus.start(self._on_message, self._on_state)
        await self.bus.subscribe(CAMPUS_CHANNEL)
        self.transport.start()
        await self.membership.start(on_dead_session=self._reap_session, on_dead_linger=self._presence.reap_linger)
        self._campus_task = supervised("cluster_campus", self._apply_campus_forever)
        log.info("cluster_joined", node=self.node_id)

    async def close(self, *, handover_seconds: float) -> None:
        await cancel_and_wait(self._campus_task)
        await self.membership.close(handover_seconds=handover_seconds)
        await self.transport.close()
        await self.bus.close()

    async def _reap_session(self, node: str, person: PersonId, sid: str) -> None:
        """A session of a node that died: removed without a grace period."""
        diffs, since = await self.store.reap_session(node, person, sid, time.time())
        await self._presence.reaped(person, diffs, since)

    # ------------------------------------------------------------- campus
    async def campus_changed(self, change: CampusChange) -> None:
        """Campus listener: tell the other nodes about changes made here."""
        if not change.remote:
            await self.bus.publish([(CAMPUS_CHANNEL, change.to_dict())])

    async def _apply_campus_forever(self) -> None:
        while True:
            change = await self._campus_inbox.get()
            try:
                await self._campus.apply_remote(change)
            except Exception:
                log.exception("cluster_campus_apply_failed", kind=change.kind, floor=change.floor_id)

    # ----------------------------------------------------------------- bus
    def _on_message(self, channel: str, body: dict[str, Any]) -> None:
        if channel == CAMPUS_CHANNEL:
            self._campus_inbox.put_nowait(CampusChange.from_dict(body))
        else:
            self.transport.on_bus_message(channel, body)
