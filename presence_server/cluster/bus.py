"""The cluster bus: messages between nodes, routed by channel.

Contract (every implementation):

* **At most once.** A message published while a node is not subscribed, or
  while the connection is down, is not delivered to that node; state lives in
  the shared store, the bus only announces changes. Receivers detect what they
  missed by sequence numbers and resync.
* **FIFO per publisher and channel.** Messages one node publishes on one
  channel arrive in publish order.
* **No echo to** ``on_message``. A node never receives its own messages there;
  it delivered them locally before publishing ("local first, then notify the
  others"). Given ``on_echo``, it hears them there, in their place among the
  others' messages of the channel: a floor's channel then shows this node how
  far the floor's stream has come (``FloorOrder``), its own changes included.
* **Routed.** A node receives only channels it subscribed to, so a node with no
  watcher of a floor receives none of its traffic.

Bodies are msgpack-encoded dicts in an envelope carrying the sender's node id;
nothing is pickled.
"""

from __future__ import annotations

from typing import Any, Awaitable, Callable, Protocol

import msgpack

__all__ = ["Bus", "MessageHandler", "StateHandler", "encode_envelope", "decode_envelope"]

#: ``handler(channel, body)``; called on the event loop, must not block.
MessageHandler = Callable[[str, dict[str, Any]], None]
#: ``handler(connected)``; True again after an outage means "resync now".
StateHandler = Callable[[bool], Awaitable[None]]


def encode_envelope(node_id: str, body: dict[str, Any]) -> bytes:
    packed: bytes = msgpack.packb({"n": node_id, "b": body}, use_bin_type=True)
    return packed


def decode_envelope(data: bytes) -> tuple[str, dict[str, Any]]:
    envelope = msgpack.unpackb(data, raw=False)
    return envelope["n"], envelope["b"]


class Bus(Protocol):
    node_id: str

    @property
    def connected(self) -> bool: ...

    async def start(
        self, on_message: MessageHandler, on_state: StateHandler, on_echo: MessageHandler | None = None
    ) -> None:
        """Connect and start receiving. Returns once connected (or raises)."""

    async def close(self) -> None:
        """Stop receiving and release connections. Idempotent."""

    async def publish(self, messages: list[tuple[str, dict[str, Any]]]) -> None:
        """Publish several (channel, body) messages in one round trip, in order."""

    async def subscribe(self, channel: str) -> None:
        """Start receiving ``channel``. Idempotent; survives reconnects."""

    async def unsubscribe(self, channel: str) -> None:
        """Stop receiving ``channel``. Idempotent."""
