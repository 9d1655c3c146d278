"""Webhooks: a municipality's signed presence and knock events, delivered in the background.

Which events reach which receiver: a change on floor F goes to every webhook of
every municipality that may see F (its own floors and its cooperations'
floors, as for its staff) and subscribed to the change's family
(``presence``: ``joined``, ``left``, ``moved``, ``status``, ``call`` diffs;
``knock``: opened and resolved). Nothing of a floor a municipality may not
see ever goes to its receivers. Knock messages (the text a knocker wrote for
the people in the room) are not sent.

Once per cluster: events are taken where the change is made — diffs as the
node that made them posts them to its outbox, knocks where they are opened or
decided — never from the bus, so each is sent by exactly one node.

Delivery, per receiver: a bounded FIFO queue (when full, the oldest event is
dropped and counted), one worker sending one event at a time, a timeout per
attempt, and retries with doubling pauses after a network error, a timeout,
a 5xx or a 429. Other 4xx answers are final (``failed``). Delivery is at
least once while retries last (a receiver that answered slowly may see an
event twice; the ``X-VO-Delivery`` id is the same), and at most the queue:
events still queued when the node stops are lost.

Destinations (:mod:`presence_server.webhook_guard`): redirects are never
followed — a 3xx is a final failure, so a receiver cannot bounce a signed
event to an address it picks — and a delivery whose URL resolves only to
addresses the receiver's policy refuses (loopback, private ranges without
``allow_networks``, link-local, ...) is refused before any connection, counted
in ``vo_webhook_refused_total`` and not retried. Each worker owns its own HTTP
session, whose resolver applies its receiver's policy.

Signature (docs/portal.md has a verification snippet)::

    X-VO-Signature: t=<unix seconds>,v1=<hex HMAC-SHA256(secret, "<t>." + body)>

computed anew for each attempt over the exact body bytes.
"""

from __future__ import annotations

import asyncio
import functools
import hashlib
import hmac
import json
import time
import uuid
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Callable, Final

import aiohttp
import structlog

from presence_server import __version__
from presence_server import portal_metrics as pm
from presence_server.config import Settings
from presence_server.diffs import FloorDiff
from presence_server.supervise import supervised
from presence_server.tasks import cancel_and_wait
from presence_server.webhook_guard import DestinationPolicy, DestinationRefused, GuardedResolver
from rooms import access
from rooms.actors import Actor, Role
from rooms.campus import CampusService

__all__ = [
    "SIGNATURE_HEADER",
    "sign",
    "WebhookEvent",
    "WebhookTarget",
    "WebhookDispatcher",
    "PRESENCE_DIFFS",
]

log = structlog.get_logger(__name__)

SIGNATURE_HEADER: Final = "X-VO-Signature"
#: Floor diff types that are presence (campus changes are not sent).
PRESENCE_DIFFS: Final = frozenset({"joined", "left", "moved", "status", "call"})
_RETRY_STATUS: Final = frozenset({408, 425, 429})


def sign(secret: bytes, timestamp: int, body: bytes) -> str:
    """The ``X-VO-Signature`` value for ``body`` sent at ``timestamp``."""
    mac = hmac.new(secret, str(timestamp).encode() + b"." + body, hashlib.sha256).hexdigest()
    return f"t={timestamp},v1={mac}"


@dataclass(frozen=True, slots=True)
class WebhookEvent:
    id: str
    type: str  # presence.joined, presence.status, ..., knock.opened, knock.resolved
    floor_id: str
    occurred_at: float
    data: dict[str, Any]

    def body(self, municipality: str) -> bytes:
        return json.dumps(
            {
                "id": self.id,
                "type": self.type,
                "municipality": municipality,
                "floor_id": self.floor_id,
                "occurred_at": self.occurred_at,
                "data": self.data,
            },
            ensure_ascii=False,
            separators=(",", ":"),
        ).encode()


@dataclass(slots=True)
class WebhookTarget:
    """One receiver: its queue and its worker."""

    municipality: str
    name: str
    url: str
    secret: bytes
    families: frozenset[str]
    queue_size: int
    policy: DestinationPolicy = field(default_factory=DestinationPolicy)
    queue: deque[WebhookEvent] = field(default_factory=deque)
    wakeup: asyncio.Event = field(default_factory=asyncio.Event)

    def offer(self, event: WebhookEvent) -> None:
        if len(self.queue) >= self.queue_size:
            self.queue.popleft()  # the newest state matters more than the oldest
            pm.WEBHOOK_EVENTS.labels(self.municipality, self.name, "dropped").inc()
        self.queue.append(event)
        pm.WEBHOOK_QUEUE.labels(self.municipality, self.name).set(len(self.queue))
        self.wakeup.set()


class WebhookDispatcher:
    """Routes events to targets and runs one delivery worker per target."""

    def __init__(
        self,
        campus: CampusService,
        targets: Sequence[WebhookTarget],
        *,
        timeout: float,
        retries: int,
        backoff: float,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._campus = campus
        self.targets = list(targets)
        self._timeout = timeout
        self._retries = retries
        self._backoff = backoff
        self._clock = clock
        self._workers: list[asyncio.Task[None]] = []
        # A stand-in staff member per municipality: a webhook sees what its staff see.
        self._viewers = {t.municipality: Actor("webhook", t.municipality, "webhook", frozenset({Role.STAFF}))
                         for t in self.targets}

    @classmethod
    def from_settings(cls, settings: Settings, campus: CampusService) -> WebhookDispatcher:
        portal = settings.portal
        targets = [
            WebhookTarget(mid, name, hook.url, hook.key, frozenset(hook.events),
                          portal.webhook_queue_size, DestinationPolicy(hook.networks))
            for mid, conf in sorted(settings.auth.municipalities.items())
            for name, hook in sorted(conf.webhooks.items())
        ]
        return cls(campus, targets, timeout=portal.webhook_timeout_seconds, retries=portal.webhook_retries,
                   backoff=portal.webhook_backoff_seconds)

    # ------------------------------------------------------------ lifecycle
    async def start(self) -> None:
        if not self.targets or self._workers:
            return
        self._workers = [
            supervised(f"webhook:{t.municipality}/{t.name}", functools.partial(self._work, t)) for t in self.targets
        ]

    async def close(self) -> None:
        for task in self._workers:
            await cancel_and_wait(task)  # each worker closes its own session and resolver on the way out
        self._workers = []

    def _session(self, resolver: GuardedResolver) -> aiohttp.ClientSession:
        # One session per receiver: its resolver applies this receiver's
        # allow_networks, and its DNS cache holds only addresses checked against them.
        connector = aiohttp.TCPConnector(resolver=resolver)
        return aiohttp.ClientSession(
            connector=connector,
            timeout=aiohttp.ClientTimeout(total=self._timeout),
            headers={"User-Agent": f"virtual-office-webhooks/{__version__}"},
            trust_env=False,  # an HTTP(S)_PROXY would connect to addresses the resolver never saw
        )

    # -------------------------------------------------------------- sources
    def on_diffs(self, diffs: list[FloorDiff]) -> None:
        """Outbox observer: this node's floor diffs."""
        if not self.targets:
            return
        now = self._clock()
        for diff in diffs:
            if diff.type in PRESENCE_DIFFS:
                data = {"seq": diff.seq, **diff.data}
                self._route("presence", WebhookEvent(_new_id(), f"presence.{diff.type}", diff.floor_id, now, data))

    def on_knock(self, kind: str, wire: dict[str, Any]) -> None:
        """Knock observer: opened or resolved, once per cluster."""
        if not self.targets:
            return
        data = {k: v for k, v in wire.items() if k != "message"}  # meant for the room, not for systems
        self._route("knock", WebhookEvent(_new_id(), f"knock.{kind}", wire["floor_id"], self._clock(), data))

    def _route(self, family: str, event: WebhookEvent) -> None:
        floor = self._campus.floor(event.floor_id)
        if floor is None:
            return  # deleted meanwhile: nobody can be shown to see it
        cooperations, projects = self._campus.cooperations, self._campus.projects
        for target in self.targets:
            # A town's systems see what its staff see as a town: a project floor only
            # when the town is a member municipality, not through one named person.
            if family in target.families and access.can_see_floor(
                self._viewers[target.municipality], floor, cooperations, projects
            ):
                target.offer(event)

    # ------------------------------------------------------------- delivery
    async def _work(self, target: WebhookTarget) -> None:
        resolver = GuardedResolver(target.policy)
        try:
            async with self._session(resolver) as http:
                await self._deliver_queue(http, target)
        finally:
            await resolver.close()  # a connector does not close a resolver it was given

    async def _deliver_queue(self, http: aiohttp.ClientSession, target: WebhookTarget) -> None:
        while True:
            while not target.queue:
                target.wakeup.clear()
                await target.wakeup.wait()
            event = target.queue.popleft()
            pm.WEBHOOK_QUEUE.labels(target.municipality, target.name).set(len(target.queue))
            try:
                delivered = await self._deliver(http, target, event)
            except Exception:  # a bug here must not stop this receiver's deliveries for good
                log.exception("webhook_delivery_crashed", webhook=target.name, municipality=target.municipality)
                delivered = False
            pm.WEBHOOK_EVENTS.labels(target.municipality, target.name, "delivered" if delivered else "failed").inc()

    async def _deliver(self, http: aiohttp.ClientSession, target: WebhookTarget, event: WebhookEvent) -> bool:
        refused = target.policy.check_url(target.url)  # an IP literal never reaches the resolver
        if refused is not None:
            return self._refused(target, event, refused)
        body = event.body(target.municipality)
        pause = self._backoff
        for attempt in range(self._retries + 1):
            if attempt:
                await asyncio.sleep(pause)  # backoff between attempts, not a wait for a result
                pause *= 2
            headers = {
                "Content-Type": "application/json",
                "X-VO-Event": event.type,
                "X-VO-Delivery": event.id,
                SIGNATURE_HEADER: sign(target.secret, int(self._clock()), body),
            }
            try:
                # No redirects: the receiver must not choose where a signed event goes next.
                async with http.post(target.url, data=body, headers=headers, allow_redirects=False) as resp:
                    status = resp.status
                    location = resp.headers.get("Location", "")
                    await resp.read()
            except DestinationRefused as exc:
                return self._refused(target, event, exc)
            except (aiohttp.ClientError, asyncio.TimeoutError) as exc:
                pm.WEBHOOK_ATTEMPTS.labels(target.municipality, target.name).inc()
                log.warning("webhook_attempt_failed", webhook=target.name, municipality=target.municipality,
                            delivery=event.id, attempt=attempt + 1, error=type(exc).__name__)
                continue
            pm.WEBHOOK_ATTEMPTS.labels(target.municipality, target.name).inc()
            if 200 <= status < 300:
                return True
            if 300 <= status < 400:
                # Final: the answer would be the same next time; the operator fixes the URL.
                log.warning("webhook_redirect_refused", webhook=target.name, municipality=target.municipality,
                            delivery=event.id, attempt=attempt + 1, status=status, location=location[:200])
                return False
            log.warning("webhook_refused", webhook=target.name, municipality=target.municipality,
                        delivery=event.id, attempt=attempt + 1, status=status)
            if status < 500 and status not in _RETRY_STATUS:
                return False  # the receiver said no: asking again will not change that
        return False

    @staticmethod
    def _refused(target: WebhookTarget, event: WebhookEvent, exc: DestinationRefused) -> bool:
        """A destination the policy refuses: logged, counted, never retried (the
        address class will not change, and trying again would only try again)."""
        pm.WEBHOOK_DESTINATION_REFUSED.labels(target.municipality, target.name, exc.reason).inc()
        log.warning("webhook_destination_refused", webhook=target.name, municipality=target.municipality,
                    delivery=event.id, host=exc.host, address=exc.address, reason=exc.reason)
        return False


def _new_id() -> str:
    return uuid.uuid4().hex

