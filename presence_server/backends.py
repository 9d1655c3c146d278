"""Every store of a node, and its bus: picked once, from the settings.

:func:`make_backends` is the one place that chooses between memory (or SQLite)
and Redis, and the only reader of ``settings.redis``: everything else receives
a :class:`Backends` and talks to the store Protocols, never to a backend class.

* One node (``redis.url`` unset): the campus, the runtime municipalities and
  the invitations in SQLite or memory (``storage.backend``; one file,
  ``storage.sqlite_path``), the audit trail beside them (in memory, or a file of
  its own: ``audit.sqlite_path``, by default ``audit.sqlite3`` beside the
  campus's); presence, knocks, calls and the directory in this process's
  memory; no bus.
* Cluster mode (``redis.url`` set): every store in Redis, plus the bus and
  membership, all on one :class:`~rooms.redis_link.RedisLink` — one client,
  one pool, one connection policy for the whole node.

Constructing does no I/O. :meth:`Backends.open` connects (failing at start-up
if Redis is away) and opens every store; :meth:`Backends.close` closes them
and then the link. The bus and membership are started by the
:class:`~presence_server.cluster.node.ClusterNode` that uses them.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from presence_server.audit.store import AuditStore
from presence_server.calls.store import CallStore
from presence_server.calls.store_memory import MemoryCallStore
from presence_server.cluster.bus import Bus
from presence_server.config import Settings
from presence_server.directory.store import DirectoryStore
from presence_server.directory.store_memory import MemoryDirectoryStore
from presence_server.invitations.store import InvitationStore
from presence_server.invitations.store_memory import MemoryInvitationStore
from presence_server.knocks.store import KnockStore
from presence_server.knocks.store_memory import MemoryKnockStore
from presence_server.presence.store import ClusterPresenceStore, PresenceStore
from presence_server.presence.store_memory import MemoryPresenceStore
from presence_server.tenants.store import TenantStore
from rooms.store import CampusStore

if TYPE_CHECKING:  # the Redis modules are imported only when a node is a cluster member
    from presence_server.cluster.membership import Membership
    from rooms.redis_link import RedisLink

__all__ = ["Backends", "ClusterBackends", "make_backends"]


@dataclass(frozen=True, slots=True)
class ClusterBackends:
    """What only a cluster member has: its id, the bus, the presence store's
    cluster side, and membership (heartbeat and reaping of dead nodes)."""

    node_id: str
    bus: Bus
    presence: ClusterPresenceStore
    membership: Membership


@dataclass(frozen=True, slots=True)
class Backends:
    """The stores of one node, each as its Protocol. ``cluster`` is None on a single node."""

    campus: CampusStore
    presence: PresenceStore
    knocks: KnockStore
    calls: CallStore
    directory: DirectoryStore
    audit: AuditStore
    #: Municipalities added at runtime (presence_server/tenants/).
    tenants: TenantStore
    invitations: InvitationStore
    cluster: ClusterBackends | None = None
    #: The shared connection in cluster mode; opened and closed here, used by nobody above the stores.
    link: RedisLink | None = None

    @property
    def storage(self) -> str:
        """A name for logs: where the campus lives."""
        return type(self.campus).__name__.removesuffix("CampusStore").lower()

    async def open(self) -> None:
        """Connect and open every store; raises StoreUnavailable if Redis is away."""
        if self.link is not None:
            await self.link.open()
        for store in self._stores():
            await store.open()

    async def close(self) -> None:
        """Close every store, then the link. Idempotent."""
        for store in reversed(self._stores()):
            await store.close()
        if self.link is not None:
            await self.link.close()

    async def drop_idle_connections(self) -> None:
        """Close the idle pooled connections of the shared link (Redis is back after
        an outage: they died with the old server). Nothing to do on a single node."""
        if self.link is not None:
            await self.link.drop_idle_connections()

    def _stores(
        self,
    ) -> tuple[
        CampusStore | PresenceStore | KnockStore | CallStore | DirectoryStore | AuditStore | TenantStore
        | InvitationStore, ...
    ]:
        return (
            self.campus, self.presence, self.knocks, self.calls, self.directory, self.audit, self.tenants,
            self.invitations,
        )


def make_backends(settings: Settings) -> Backends:
    """The stores (and, in cluster mode, the bus) ``settings`` ask for; nothing opened yet."""
    if settings.redis.url:
        return _cluster(settings, settings.redis.url, settings.redis.prefix)
    return Backends(
        campus=_local_campus(settings),
        presence=MemoryPresenceStore(),
        knocks=MemoryKnockStore(timeout=settings.knock.timeout_seconds, cooldown=settings.knock.cooldown_seconds),
        calls=MemoryCallStore(max_mesh=settings.calls.max_mesh, ring_timeout=settings.calls.ring_timeout_seconds),
        directory=MemoryDirectoryStore(),
        audit=_local_audit(settings),
        tenants=_local_tenants(settings),
        invitations=_local_invitations(settings),
    )


def _local_audit(settings: Settings) -> AuditStore:
    # The audit trail lives where the campus does: in memory with a memory campus,
    # otherwise in a SQLite file of its own (presence_server/audit/store_sqlite.py says why).
    if settings.storage.backend == "memory":
        from presence_server.audit.store_memory import MemoryAuditStore

        return MemoryAuditStore()
    from presence_server.audit.store_sqlite import SqliteAuditStore

    return SqliteAuditStore(settings.audit.sqlite_path or Path(settings.storage.sqlite_path).with_name("audit.sqlite3"))


def _local_tenants(settings: Settings) -> TenantStore:
    # Beside the campus: in memory with it, or a table of its own in its SQLite file.
    if settings.storage.backend == "memory":
        from presence_server.tenants.store_memory import MemoryTenantStore

        return MemoryTenantStore()
    from presence_server.tenants.store_sqlite import SqliteTenantStore

    return SqliteTenantStore(settings.storage.sqlite_path)


def _local_invitations(settings: Settings) -> InvitationStore:
    # In the campus file when the campus is in SQLite; in memory with it otherwise.
    if settings.storage.backend == "memory":
        return MemoryInvitationStore()
    from presence_server.invitations.store_sqlite import SqliteInvitationStore

    return SqliteInvitationStore(settings.storage.sqlite_path)


def _local_campus(settings: Settings) -> CampusStore:
    # Imported here so that a node loads only the backend it uses.
    if settings.storage.backend == "memory":
        from rooms.store_memory import MemoryCampusStore

        return MemoryCampusStore()
    from rooms.store_sqlite import SqliteCampusStore

    return SqliteCampusStore(settings.storage.sqlite_path)


def _cluster(settings: Settings, url: str, prefix: str) -> Backends:
    # Imported here, not at the top: a single node never loads redis-py.
    from presence_server.audit.store_redis import RedisAuditStore
    from presence_server.calls.store_redis import RedisCallStore
    from presence_server.cluster.bus_redis import RedisBus
    from presence_server.cluster.membership import Membership
    from presence_server.cluster.node import new_node_id
    from presence_server.directory.store_redis import RedisDirectoryStore
    from presence_server.invitations.store_redis import RedisInvitationStore
    from presence_server.knocks.store_redis import RedisKnockStore
    from presence_server.presence.store_redis import RedisPresenceStore
    from presence_server.tenants.store_redis import RedisTenantStore
    from rooms.redis_link import RedisLink
    from rooms.store_redis import RedisCampusStore

    link = RedisLink(url)
    node_id = new_node_id()
    presence = RedisPresenceStore(link, prefix=prefix, node_id=node_id)
    cluster = ClusterBackends(
        node_id=node_id,
        bus=RedisBus(link, node_id=node_id, prefix=prefix),
        presence=presence,
        membership=Membership(link, prefix=prefix, node_id=node_id, sessions=presence),
    )
    return Backends(
        campus=RedisCampusStore(link, prefix=prefix),
        presence=presence,
        knocks=RedisKnockStore(
            link, prefix=prefix, timeout=settings.knock.timeout_seconds, cooldown=settings.knock.cooldown_seconds
        ),
        calls=RedisCallStore(
            link, prefix=prefix, max_mesh=settings.calls.max_mesh, ring_timeout=settings.calls.ring_timeout_seconds
        ),
        directory=RedisDirectoryStore(link, prefix=prefix),
        audit=RedisAuditStore(link, prefix=prefix),
        tenants=RedisTenantStore(link, prefix=prefix),
        invitations=RedisInvitationStore(
            link, prefix=prefix, keep_seconds=settings.invitations.retention_days * 86400
        ),
        cluster=cluster,
        link=link,
    )
