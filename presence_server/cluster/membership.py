"""Who is in the cluster, cleaning up after a node that died, and fencing.

Keys (``P`` is the prefix; one hash tag per node, shared with the presence
store's ``{node:<id>}`` session lists, so each script stays in one slot)::

    P nodes                  SET     ids of the registered nodes (the reapers' list)
    P{node:<id>}:epoch       STRING  the token of the node's current registration
    P{node:<id>}:alive       STRING  the same token, TTL ``ttl``: refreshed every ``heartbeat``
    P{node:<id>}:reaper      STRING  who is reaping the node (60 s, so a reaper that dies is replaced)
    P cluster:incarnation    STRING  a token set once per Redis data set: tells a node that
                                     Redis lost everything (restarted empty, failed over)

**Reaping.** Every ``check`` seconds each node reads every listed node's
``alive``. A node is reaped only by a survivor that has *itself* seen it silent
for a full ``ttl`` while that survivor stayed in contact with Redis: either it
saw ``alive`` present earlier in this contact and now gone (the key expired,
so ``ttl`` passed without a beat), or, if it never saw the node alive since its
own contact (re)began, it has watched ``alive`` be absent for ``ttl``. A Redis
outage (any failed command here, or the bus reporting one) ends the contact and
forgets every observation, so a Redis that comes back after its keys expired
makes nobody reap anybody: the nodes beat again within a second. The first
survivor to ``SET reaper NX`` claims the node - exactly one - and, in the same
script, deletes its ``epoch`` (the fence); it removes every session the node
held through ``on_dead_session``, ends the grace periods it had started through
``on_dead_linger`` (the presence store publishes each leave once), drops the
node's lists, and last removes ``reaper``. With the defaults a node killed
without warning is gone from every view within ttl + check + the reaping
itself: about 7 s.

**Fencing.** The heartbeat refreshes ``alive`` only while ``epoch`` still holds
this registration's token, in one script. A node that finds it gone was
declared dead (paused longer than ``ttl``: SIGSTOP, VM migration, a long GC) or
Redis lost its data; either way Redis no longer holds its sessions. It stops
beating and reaping and calls ``on_fenced``; the node then calls :meth:`rejoin`,
which waits until a running reap has finished (``reaper`` gone), registers
under a new token and says whether Redis lost its data, and the node registers
every live session again with what it knows (``app._recover``). It never goes
on serving users the others cannot see.

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
import enum
import secrets
import time
from typing import Awaitable, Callable, Final

import structlog

from presence_server.presence.store import ClusterPresenceStore
from presence_server.supervise import Loop, supervised
from presence_server.tasks import cancel_and_wait
from rooms.errors import StoreUnavailable
from rooms.person import PersonId
from rooms.redis_link import RedisLink, as_text

__all__ = ["Membership", "DeadSession", "DeadLinger", "Rejoin"]

log = structlog.get_logger(__name__)

#: ``on_dead_session(node, person, sid)``: remove a session a dead node held.
DeadSession = Callable[[str, PersonId, str], Awaitable[None]]
#: ``on_dead_linger(person, since)``: end a grace period a dead node had started.
DeadLinger = Callable[[PersonId, float], Awaitable[None]]

#: How long a reaper's claim holds; a reaper that dies mid-way is replaced after it.
REAPER_SECONDS: Final = 60

# KEYS: 1 epoch, 2 alive, 3 reaper.  ARGV: 1 token, 2 ttl ms.
# 0 while a reaper is still removing the node's sessions: registering now would
# let it remove the ones registered again.
_REGISTER: Final = """
if redis.call('EXISTS', KEYS[3]) == 1 then return 0 end
redis.call('SET', KEYS[1], ARGV[1])
redis.call('SET', KEYS[2], ARGV[1], 'PX', ARGV[2])
return 1
"""

# KEYS: 1 epoch, 2 alive.  ARGV: 1 token, 2 ttl ms.  0: fenced.
_BEAT: Final = """
if redis.call('GET', KEYS[1]) ~= ARGV[1] then return 0 end
redis.call('SET', KEYS[2], ARGV[1], 'PX', ARGV[2])
return 1
"""

# KEYS: 1 alive, 2 reaper, 3 epoch.  ARGV: 1 reaper's node id, 2 claim seconds.
# The fence and the claim are one step: once claimed, the node can no longer beat.
_CLAIM: Final = """
if redis.call('EXISTS', KEYS[1]) == 1 then return 0 end
if not redis.call('SET', KEYS[2], ARGV[1], 'NX', 'EX', ARGV[2]) then return 0 end
redis.call('DEL', KEYS[3])
return 1
"""


class Rejoin(enum.Enum):
    """What :meth:`Membership.rejoin` found, mildest first."""

    KEPT = "kept"  # still registered: Redis holds this node's sessions
    FENCED = "fenced"  # declared dead and reaped: registered anew, sessions gone
    LOST = "lost"  # Redis lost its data: registered anew, everything gone


_SEVERITY: Final = {Rejoin.KEPT: 0, Rejoin.FENCED: 1, Rejoin.LOST: 2}



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
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.node_id: Final = node_id
        self._link = redis
        self._prefix = prefix
        self._sessions = sessions
        self._heartbeat = heartbeat
        self._ttl = ttl
        self._check = check
        self._clock = clock
        self._on_dead_session: DeadSession | None = None
        self._on_dead_linger: DeadLinger | None = None
        self._on_fenced: Callable[[], None] = lambda: None
        self._tasks: list[asyncio.Task[None]] = []
        self._token: str | None = None  # this registration; None while fenced
        self._incarnation: str | None = None
        self._unsettled = Rejoin.KEPT  # the worst rejoin since the last settled()
        # Observations made since contact with Redis last (re)began; an outage forgets them.
        self._expires: dict[str, float] = {}  # node -> when its alive key was due to expire
        self._absent_since: dict[str, float] = {}  # node -> first seen without alive (never seen alive)
        self.reaped: list[str] = []  # node ids this node reaped (for metrics and tests)
        self.fenced = 0  # times this node found itself declared dead

    def _key(self, *parts: str) -> str:
        return self._prefix + ":".join(parts)

    def _node_keys(self, node: str) -> tuple[str, str, str]:
        """epoch, alive, reaper of ``node``."""
        base = f"{self._prefix}{{node:{node}}}:"
        return base + "epoch", base + "alive", base + "reaper"

    def on_fenced(self, handler: Callable[[], None]) -> None:
        """``handler()`` runs (synchronously, once per fencing) when a heartbeat finds
        this node declared dead; it should schedule a :meth:`rejoin`."""
        self._on_fenced = handler

    @property
    def registered(self) -> bool:
        return self._token is not None

    async def start(self, *, on_dead_session: DeadSession, on_dead_linger: DeadLinger) -> None:
        """Register this node (one heartbeat now), then beat and look for dead nodes."""
        self._on_dead_session, self._on_dead_linger = on_dead_session, on_dead_linger
        await self._link.open()  # shared: already open in a running node
        await self._adopt_incarnation()
        if not await self._register():
            raise RuntimeError(f"node id {self.node_id} is being reaped")  # ids are unique per start
        self._tasks = [
            supervised("cluster_heartbeat", self._every(self._heartbeat, self._beat)),
            supervised("cluster_reaper", self._every(self._check, self._reap_dead)),
        ]

    async def close(self, *, handover_seconds: float) -> None:
        """Stop heartbeating; the survivors reap this node ``handover_seconds`` from now."""
        for task in self._tasks:
            await cancel_and_wait(task)
        self._tasks = []
        if self._link.is_open and self._token is not None:
            try:
                ttl_ms = max(1, int(handover_seconds * 1000))
                await self._link.client.set(self._node_keys(self.node_id)[1], "draining", px=ttl_ms)
            except StoreUnavailable:
                log.warning("cluster_handover_failed", node=self.node_id)  # reaped after the TTL anyway

    def redis_state(self, connected: bool) -> None:
        """The bus saw Redis go (or come back): an outage ends this node's contact."""
        if not connected:
            self._lost_contact()

    def _lost_contact(self) -> None:
        self._expires.clear()
        self._absent_since.clear()

    def _every(self, period: float, job: Callable[[], Awaitable[None]]) -> Loop:
        async def loop() -> None:
            while True:
                await asyncio.sleep(period)
                try:
                    await job()
                except StoreUnavailable as exc:  # Redis away: the bus reports it; try again
                    self._lost_contact()
                    log.debug("cluster_membership_store_unavailable", error=str(exc))
                except Exception:
                    self._lost_contact()
                    raise  # supervised: logged, counted, restarted with back-off

        return loop

    # ------------------------------------------------------------ registration
    async def _register(self) -> bool:
        client = self._link.client
        token = secrets.token_hex(8)
        epoch, alive, reaper = self._node_keys(self.node_id)
        registered = await client.eval(_REGISTER, 3, epoch, alive, reaper, token, int(self._ttl * 1000))
        if not registered:
            return False
        await client.sadd(self._key("nodes"), self.node_id)
        self._token = token
        return True

    async def _adopt_incarnation(self) -> bool:
        """Remember Redis's data-set token (set one if none); True if it is not the
        one remembered, i.e. Redis lost its data since."""
        client = self._link.client
        key = self._key("cluster", "incarnation")
        await client.set(key, secrets.token_hex(8), nx=True)
        raw = await client.get(key)
        current = None if raw is None else as_text(raw)
        lost = self._incarnation is not None and current != self._incarnation
        self._incarnation = current
        return lost

    async def rejoin(self) -> Rejoin:
        """Make sure this node is registered. ``KEPT`` if it still was; otherwise wait
        for any running reap to end, register anew and say why it had to
        (``LOST``: Redis lost its data). Raises ``StoreUnavailable`` if Redis is away.

        The answer is the worst one since :meth:`settled`: a recovery cut off after
        the rejoin finds the node registered, yet must still do everything."""
        if self._token is None or not await self._beat_once():
            self._token = None
            lost = await self._adopt_incarnation()
            while not await self._register():  # a reaper is still at work: at most REAPER_SECONDS
                await asyncio.sleep(self._heartbeat)
            log.warning("cluster_node_rejoined", node=self.node_id, lost=lost)
            found = Rejoin.LOST if lost else Rejoin.FENCED
            if _SEVERITY[found] > _SEVERITY[self._unsettled]:
                self._unsettled = found
        return self._unsettled

    def settled(self) -> None:
        """The node's recovery acted on what :meth:`rejoin` said."""
        self._unsettled = Rejoin.KEPT

    async def _beat_once(self) -> bool:
        assert self._token is not None
        epoch, alive, _ = self._node_keys(self.node_id)
        return bool(await self._link.client.eval(
            _BEAT, 2, epoch, alive, self._token, int(self._ttl * 1000)))

    async def _beat(self) -> None:
        token = self._token
        if token is None:
            return  # fenced: the node's recovery rejoins
        if await self._beat_once():
            # Listed again in case the SADD after registering failed: alive was just
            # refreshed, so no reaper can be claiming this node now.
            await self._link.client.sadd(self._key("nodes"), self.node_id)
            return
        if self._token != token:
            return  # a rejoin registered anew meanwhile
        self._token = None
        self.fenced += 1
        log.warning("cluster_node_fenced", node=self.node_id)
        self._on_fenced()

    # ----------------------------------------------------------------- reaping
    async def _reap_dead(self) -> None:
        client = self._link.client
        if self._token is None:
            return  # not a member right now: judge nobody
        members = await client.smembers(self._key("nodes"))
        others = sorted(n for n in (as_text(raw) for raw in members) if n != self.node_id)
        pipe = client.pipeline(transaction=False)
        for node in others:
            pipe.pttl(self._node_keys(node)[1])
        remaining = await pipe.execute()
        now = self._clock()  # after the reads: they may have waited for a reconnect
        for node, pttl in zip(others, remaining):
            if pttl != -2:  # alive (-1: no TTL, e.g. written by hand)
                self._absent_since.pop(node, None)
                self._expires[node] = now + max(0, pttl) / 1000
                continue
            if node not in self._expires:  # not seen alive in this contact: watch it for a ttl
                since = self._absent_since.setdefault(node, now)
                if now - since < self._ttl:
                    continue
            await self._reap(node)

    async def _reap(self, node: str) -> None:
        assert self._on_dead_session is not None and self._on_dead_linger is not None, "start() first"
        client = self._link.client
        epoch, alive, reaper = self._node_keys(node)
        # Exactly one survivor reaps: the one whose claim (and fence) succeeds.
        claimed = await client.eval(_CLAIM, 3, alive, reaper, epoch, self.node_id, REAPER_SECONDS)
        if not claimed:
            return
        sessions = await self._sessions.node_sessions(node)
        lingering = await self._sessions.node_lingering(node)
        log.warning("cluster_node_dead", node=node, sessions=len(sessions), lingering=len(lingering))
        for person, sid in sessions:
            await self._on_dead_session(node, person, sid)
        for person, since in lingering:  # grace periods the dead node would have ended
            await self._on_dead_linger(person, since)
        await self._sessions.forget_node(node)
        pipe = client.pipeline(transaction=False)
        pipe.srem(self._key("nodes"), node)
        pipe.delete(reaper)  # last: the node, if it comes back, may register again
        await pipe.execute()
        self._expires.pop(node, None)
        self._absent_since.pop(node, None)
        self.reaped.append(node)
