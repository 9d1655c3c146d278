"""The running server's parts, as one object the handlers reach through the app."""

from __future__ import annotations

from dataclasses import dataclass

import socketio
from aiohttp import web

from presence_server.audit.service import AuditLog
from presence_server.auth import TokenVerifier
from presence_server.backends import Backends
from presence_server.calls.service import CallService
from presence_server.cluster.node import ClusterNode
from presence_server.config import Settings
from presence_server.gateway import Gateway
from presence_server.knocks.service import KnockService
from presence_server.origins import TownOrigins
from presence_server.outbox import Outbox
from presence_server.presence.service import PresenceService
from presence_server.tenants.service import TenantService
from rooms.campus import CampusService

__all__ = ["Runtime", "RUNTIME"]


@dataclass(slots=True)
class Runtime:
    settings: Settings
    backends: Backends
    sio: socketio.AsyncServer
    campus: CampusService
    outbox: Outbox
    presence: PresenceService
    knocks: KnockService
    verifier: TokenVerifier
    gateway: Gateway
    calls: CallService
    audit: AuditLog
    #: Every municipality's browser origins (configured and runtime), shared by the
    #: gateway, the HTTP API and Engine.IO.
    origins: TownOrigins
    ready: bool = False
    cluster: ClusterNode | None = None  # set in cluster mode (redis.url)
    tenants: TenantService | None = None  # set by platform_rest.install


RUNTIME = web.AppKey("runtime", Runtime)
