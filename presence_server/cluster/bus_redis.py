"""The bus over Redis pub/sub (redis-py asyncio), on the node's shared :class:`~rooms.redis_link.RedisLink`.

One connection of the link's pool subscribes (channels are added and removed
as local watchers come and go); publishing uses the same pool and pipelines a
batch of messages into one round trip. When Redis goes away the reader backs off with
jitter up to a cap, reconnects, subscribes to every channel it had, and reports
the outage and the recovery through ``on_state`` so the node can resync.
"""

from __future__ import annotations

import asyncio
import random
from typing import Any, Final

import structlog
from redis.asyncio.client import PubSub

from presence_server import metrics
from presence_server.cluster.bus import MessageHandler, StateHandler, decode_envelope, encode_envelope
from presence_server.supervise import supervised
from presence_server.tasks import cancel_and_wait
from rooms.redis_link import RedisLink, translated

__all__ = ["RedisBus"]

log = structlog.get_logger(__name__)

_BACKOFF_START: Final = 0.1
# Low: after a long outage the reconnect waits at most this long once Redis is back, and
# that wait is most of a node's recovery time (docs/cluster.md). A refused connect is cheap.
_BACKOFF_CAP: Final = 2.0


class RedisBus:
    """:class:`~presence_server.cluster.bus.Bus` over Redis pub/sub. Given a URL it
    makes and owns a link of its own; given a link it shares it (and leaves
    closing it to the link's owner). ``publish`` raises
    :class:`~rooms.errors.StoreUnavailable` while Redis is away."""

    def __init__(self, redis: RedisLink | str, *, node_id: str, prefix: str = "vo:") -> None:
        self.node_id = node_id
        self._owns_link = isinstance(redis, str)
        self._link = RedisLink(redis) if isinstance(redis, str) else redis
        self._prefix = prefix
        self._started = False
        self._pubsub: PubSub | None = None
        self._channels: set[str] = set()  # bus channel names (without prefix)
        self._on_message: MessageHandler | None = None
        self._on_state: StateHandler | None = None
        self._on_echo: MessageHandler | None = None
        self._reader: asyncio.Task[None] | None = None
        self._connected = False
        self._lock = asyncio.Lock()  # subscription changes vs. reconnects

    @property
    def connected(self) -> bool:
        return self._connected

    def _key(self, channel: str) -> str:
        return self._prefix + channel

    async def start(
        self, on_message: MessageHandler, on_state: StateHandler, on_echo: MessageHandler | None = None
    ) -> None:
        self._on_message, self._on_state, self._on_echo = on_message, on_state, on_echo
        await self._link.open()  # shared: already open in a running node
        self._started = True
        await self._connect()
        self._reader = supervised("bus_reader", self._read_forever)

    async def close(self) -> None:
        await cancel_and_wait(self._reader)
        self._reader = None
        if self._pubsub is not None:
            await self._pubsub.aclose()  # type: ignore[no-untyped-call]  # redis-py leaves it unannotated
            self._pubsub = None
        if self._started and self._owns_link:
            await self._link.close()
        self._started = False
        self._connected = False

    async def publish(self, messages: list[tuple[str, dict[str, Any]]]) -> None:
        if not messages or not self._started:
            return
        pipe = self._link.client.pipeline(transaction=False)
        for channel, body in messages:
            pipe.publish(self._key(channel), encode_envelope(self.node_id, body))
        await pipe.execute()
        metrics.BUS_PUBLISHED.inc(len(messages))

    async def subscribe(self, channel: str) -> None:
        async with self._lock:
            if channel in self._channels:
                return
            self._channels.add(channel)
            if self._connected and self._pubsub is not None:
                with translated():  # Redis away: the caller answers unavailable
                    await self._pubsub.subscribe(self._key(channel))

    async def unsubscribe(self, channel: str) -> None:
        async with self._lock:
            if channel not in self._channels:
                return
            self._channels.discard(channel)
            if self._connected and self._pubsub is not None:
                with translated():
                    await self._pubsub.unsubscribe(self._key(channel))

    # ---------------------------------------------------------------- reading
    async def _connect(self) -> None:
        client = self._link.client
        async with self._lock:
            if self._pubsub is not None:
                await self._pubsub.aclose()  # type: ignore[no-untyped-call]  # redis-py leaves it unannotated
            self._pubsub = client.pubsub(ignore_subscribe_messages=True)
            self._connected = False
            await client.ping()
            # A pubsub with no channel has no connection yet; a private
            # node channel keeps it open and lets others address this node.
            await self._pubsub.subscribe(self._key("node:" + self.node_id), *map(self._key, self._channels))
            self._connected = True

    async def _read_forever(self) -> None:
        backoff = _BACKOFF_START
        while True:
            if self._connected and self._pubsub is not None:
                try:
                    # Block until a message: a read with a timeout can be cut off in the
                    # middle of a message, and redis-py then holds that message back until
                    # the next one arrives (diffs stuck under load). A lost connection still
                    # ends the read with an error; keepalive catches a silent peer.
                    message = await self._pubsub.get_message(timeout=None)
                except Exception as exc:  # redis-py raises more than ConnectionError here
                    self._connected = False
                    log.warning("bus_disconnected", error=repr(exc))
                    await self._notify(False)
                    continue
                backoff = _BACKOFF_START
                if message is not None and message["type"] == "message":
                    self._dispatch(message["channel"], message["data"])
                continue
            # Full jitter: spread the reconnects of many nodes.
            await asyncio.sleep(random.uniform(0, backoff))
            backoff = min(_BACKOFF_CAP, backoff * 2)
            try:
                await self._connect()
            except Exception as exc:
                log.debug("bus_reconnect_failed", error=repr(exc))
                continue
            log.info("bus_reconnected", channels=len(self._channels))
            await self._notify(True)

    def _dispatch(self, raw_channel: bytes, data: bytes) -> None:
        channel = raw_channel.decode()[len(self._prefix) :]
        try:
            sender, body = decode_envelope(data)
        except Exception:  # a foreign or corrupt message must not stop the reader
            log.warning("bus_message_undecodable", channel=channel)
            return
        if sender == self.node_id:  # our own echo: delivered locally before it was published
            if self._on_echo is not None:
                self._on_echo(channel, body)
            return
        kind, _, name = channel.partition(":")
        metrics.BUS_RECEIVED.labels(kind).inc()
        if kind == "f":
            metrics.BUS_FLOOR_RECEIVED.labels(name).inc()
        assert self._on_message is not None
        self._on_message(channel, body)

    async def _notify(self, connected: bool) -> None:
        metrics.BUS_CONNECTED.set(1 if connected else 0)
        if self._on_state is not None:
            try:
                await self._on_state(connected)
            except Exception:
                log.exception("bus_state_handler_failed", connected=connected)
