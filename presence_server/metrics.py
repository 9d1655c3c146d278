"""Prometheus metrics: what an operator watches.

Module-level collectors on a dedicated registry (not the global default), so
several in-process servers in one test run do not collide and ``/metrics``
shows only this server's figures.
"""

from __future__ import annotations

from typing import Final

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.exposition import CONTENT_TYPE_LATEST

__all__ = [
    "REGISTRY",
    "SESSIONS",
    "ONLINE_USERS",
    "EVENTS_IN",
    "EVENTS_OUT",
    "ERRORS",
    "KNOCKS",
    "BROADCAST_LATENCY",
    "CAMPUS_CHANGES",
    "LOOP_RESTARTS",
    "DELIVERY_FAILURES",
    "FANOUT_DELIVERIES",
    "SLOW_CLIENTS",
    "BUS_PUBLISHED",
    "BUS_RECEIVED",
    "BUS_FLOOR_RECEIVED",
    "BUS_CONNECTED",
    "CALLS_ACTIVE",
    "CALL_MEMBERS",
    "CALL_SETUP_SECONDS",
    "RINGS",
    "RING_ANSWER_SECONDS",
    "render",
    "CONTENT_TYPE",
]

REGISTRY: Final = CollectorRegistry(auto_describe=True)

SESSIONS: Final = Gauge("vo_sessions", "Connected Socket.IO sessions on this node.", registry=REGISTRY)
ONLINE_USERS: Final = Gauge(
    "vo_online_users", "Users online (one per person, any number of sessions).", ["municipality"], registry=REGISTRY
)
EVENTS_IN: Final = Counter("vo_events_in_total", "Client events received, by event name.", ["event"], registry=REGISTRY)
EVENTS_OUT: Final = Counter(
    "vo_events_out_total", "Events and floor diffs sent, by type (per audience, not per recipient).", ["type"],
    registry=REGISTRY,
)
ERRORS: Final = Counter("vo_errors_total", "Refused requests, by error code.", ["code"], registry=REGISTRY)
KNOCKS: Final = Counter("vo_knocks_total", "Resolved knocks, by outcome.", ["outcome"], registry=REGISTRY)
BROADCAST_LATENCY: Final = Histogram(
    "vo_change_to_broadcast_seconds",
    "Time from a state change to handing its frame to the transport.",
    buckets=(0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0),
    registry=REGISTRY,
)
DELIVERY_FAILURES: Final = Counter(
    "vo_delivery_failures_total", "Frames or events the transport failed to send.", registry=REGISTRY
)
FANOUT_DELIVERIES: Final = Counter(
    "vo_fanout_deliveries_total", "Floor frames written directly to watchers' sockets.", registry=REGISTRY
)
SLOW_CLIENTS: Final = Counter(
    "vo_slow_clients_disconnected_total", "Sessions disconnected for not reading their frames.", registry=REGISTRY
)
BUS_PUBLISHED: Final = Counter("vo_bus_published_total", "Messages this node published on the bus.", registry=REGISTRY)
BUS_RECEIVED: Final = Counter(
    "vo_bus_received_total", "Bus messages this node received, by channel kind (f, u, campus, node).", ["kind"],
    registry=REGISTRY,
)
BUS_FLOOR_RECEIVED: Final = Counter(
    "vo_bus_floor_received_total",
    "Floor messages this node received from the bus, by floor: zero for floors nobody here watches.",
    ["floor"],
    registry=REGISTRY,
)
BUS_CONNECTED: Final = Gauge("vo_bus_connected", "1 while the bus connection is up.", registry=REGISTRY)
CALLS_ACTIVE: Final = Gauge(
    "vo_calls_active", "Calls in progress (the call store's count: cluster-wide in cluster mode).", registry=REGISTRY
)
CALL_MEMBERS: Final = Gauge(
    "vo_call_members", "People in calls (the call store's count: cluster-wide in cluster mode).", registry=REGISTRY
)
CALL_SETUP_SECONDS: Final = Histogram(
    "vo_call_setup_seconds",
    "Time from joining a call (or accepting a ring) until the first SDP answer to or from that member is "
    "relayed: the signalling part of a call set-up, as the server sees it.",
    buckets=(0.05, 0.1, 0.25, 0.5, 1, 2, 5, 10, 30),
    registry=REGISTRY,
)
RINGS: Final = Counter("vo_rings_total", "Resolved rings (direct calls), by outcome.", ["outcome"], registry=REGISTRY)
RING_ANSWER_SECONDS: Final = Histogram(
    "vo_ring_answer_seconds",
    "Time from a ring to its answer (accepted or declined): the human part of a call set-up.",
    buckets=(0.5, 1, 2, 3, 5, 8, 13, 20, 30),
    registry=REGISTRY,
)
CAMPUS_CHANGES: Final = Counter(
    "vo_campus_changes_total", "Campus changes (floors, rooms) applied, by kind.", ["kind"], registry=REGISTRY
)
FLOORS_REVOKED: Final = Counter(
    "vo_floors_revoked_total",
    "Floor watches ended by the server (floor.revoked), by reason: membership, deleted.",
    ["reason"],
    registry=REGISTRY,
)
PLATFORM_CHANGES: Final = Counter(
    "vo_platform_changes_total",
    "Municipalities and cooperations added or changed by platform admins on this node, by action.",
    ["action"],
    registry=REGISTRY,
)
RUNTIME_MUNICIPALITIES: Final = Gauge(
    "vo_runtime_municipalities",
    "Municipalities added at runtime whose tokens this node verifies (besides the configured ones).",
    registry=REGISTRY,
)

LOOP_RESTARTS: Final = Counter(
    "vo_loop_restarts_total",
    "Background loops restarted after a crash, by loop (presence_server.supervise): "
    "anything above zero is a bug to look at in the logs (loop_crashed).",
    ["loop"],
    registry=REGISTRY,
)

CONTENT_TYPE: Final = CONTENT_TYPE_LATEST


def render() -> bytes:
    return generate_latest(REGISTRY)
