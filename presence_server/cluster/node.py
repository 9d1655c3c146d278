"""This process as a member of a cluster: the bus, what travels on it, and membership.

Starts and stops the bus and membership the backends made, publishes the
campus changes made here on the ``campus`` channel, takes in those made
elsewhere, and hands floor and user messages to the :class:`ClusterTransport`.
Campus changes are applied in the order received, one at a time. When
membership finds a dead node, its sessions are removed through the presence
store's cluster side and the presence service tells everyone.

Recovery has one owner: a task that runs ``recover`` (``app._recover``) when the
bus is back after an outage or the membership finds this node fenced, one run
at a time, retried with back-off until it succeeds. The node is degraded
(``on_state(False)``: not ready, clients told, requests answered
``unavailable``) from the outage or the fencing until ``recover`` has made
Redis hold what this node holds; ``recover`` itself ends the degraded state.
"""

from __future__ import annotations

import asyncio
import os
import random
import secrets
import socket
import time
from typing import TYPE_CHECKING, Any, Awaitable, Callable, Final

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

_RETRY_START: Final = 0.2
_RETRY_CAP: Final = 5.0


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
        recover: Callable[[], Awaitable[None]],
    ) -> None:
        self.bus = backends.bus
        self.membership = backends.membership
        #: The presence store's cluster side: the sessions each node registered.
        self.store: ClusterPresenceStore = backends.presence
        self.transport = transport
        self._presence = presence
        self._campus = campus
        self._on_state = on_state
        self._recover = recover
        self._campus_inbox: asyncio.Queue[CampusChange] = asyncio.Queue()
        self._campus_task: asyncio.Task[None] | None = None
        self._recovery_wanted = asyncio.Event()
        self._recovery_task: asyncio.Task[None] | None = None
        self.recoveries = 0  # completed (for tests and logs)
        # Channels of services beside the campus (invitations): channel -> handler.
        self._channels: dict[str, Callable[[dict[str, Any]], None]] = {}
        campus.add_listener(self)
        self.membership.on_fenced(self.request_recovery)

    @property
    def node_id(self) -> str:
        return self.bus.node_id

    def add_channel(self, channel: str, handler: Callable[[dict[str, Any]], None]) -> None:
        """Before :meth:`start`: messages on ``channel`` go to ``handler`` (on the event
        loop; it must not block). For services that tell other nodes (invitations)."""
        self._channels[channel] = handler

    async def publish(self, channel: str, body: dict[str, Any]) -> None:
        """Tell the other nodes on ``channel`` (at most once, like every bus message)."""
        await self.bus.publish([(channel, body)])

    async def start(self) -> None:
        await self.bus.start(self._on_message, self._on_bus_state, self.transport.on_bus_echo)
        await self.bus.subscribe(CAMPUS_CHANNEL)
        for channel in self._channels:
            await self.bus.subscribe(channel)
        self.transport.start()
        await self.membership.start(on_dead_session=self._reap_session, on_dead_linger=self._presence.reap_linger)
        self._campus_task = supervised("cluster_campus", self._apply_campus_forever)
        # Its own retry with back-off covers a failed recovery; supervised covers a bug around it.
        self._recovery_task = supervised("cluster_recovery", self._recover_forever)
        log.info("cluster_joined", node=self.node_id)

    async def close(self, *, handover_seconds: float) -> None:
        await cancel_and_wait(self._recovery_task)
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

    # ------------------------------------------------------------ recovery
    def request_recovery(self) -> None:
        """Make Redis hold what this node holds again (after an outage, or fenced)."""
        self._recovery_wanted.set()

    async def _on_bus_state(self, connected: bool) -> None:
        self.membership.redis_state(connected)
        if connected:
            self.request_recovery()
        else:
            await self._on_state(False)

    async def _recover_forever(self) -> None:
        delay = _RETRY_START
        while True:
            await self._recovery_wanted.wait()
            self._recovery_wanted.clear()
            if not self.bus.connected:
                continue  # Redis still away: the bus asks again when it is back
            await self._on_state(False)  # fenced: from now until recovered (idempotent)
            try:
                await self._recover()
            except Exception as exc:  # Redis blinked again, or a bug: log, back off, retry
                log.warning("cluster_recovery_failed", node=self.node_id, error=repr(exc), retry_in=round(delay, 2),
                            exc_info=True)
                await asyncio.sleep(random.uniform(delay / 2, delay))
                delay = min(_RETRY_CAP, delay * 2)
                self._recovery_wanted.set()
                continue
            delay = _RETRY_START
            self.recoveries += 1

    # ----------------------------------------------------------------- bus
    def _on_message(self, channel: str, body: dict[str, Any]) -> None:
        if channel == CAMPUS_CHANNEL:
            self._campus_inbox.put_nowait(CampusChange.from_dict(body))
        elif channel in self._channels:
            self._channels[channel](body)
        else:
            self.transport.on_bus_message(channel, body)
