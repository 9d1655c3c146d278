"""Prometheus metrics of the portal features, on the server's registry
(:data:`presence_server.metrics.REGISTRY`), so ``/metrics`` shows them."""

from __future__ import annotations

from typing import Final

from prometheus_client import Counter, Gauge

from presence_server.metrics import REGISTRY

__all__ = [
    "WEBHOOK_EVENTS",
    "WEBHOOK_QUEUE",
    "WEBHOOK_ATTEMPTS",
    "WEBHOOK_DESTINATION_REFUSED",
    "PORTAL_REQUESTS",
    "ORIGIN_REFUSALS",
    "PLATFORM_OPTINS",
]

WEBHOOK_EVENTS: Final = Counter(
    "vo_webhook_events_total",
    "Webhook events by outcome: delivered (2xx), failed (retries exhausted, refused, redirected, "
    "destination refused), dropped (queue full, the oldest went).",
    ["municipality", "webhook", "result"],
    registry=REGISTRY,
)
WEBHOOK_QUEUE: Final = Gauge(
    "vo_webhook_queue_depth", "Events waiting per webhook on this node.", ["municipality", "webhook"], registry=REGISTRY
)
WEBHOOK_ATTEMPTS: Final = Counter(
    "vo_webhook_attempts_total", "HTTP attempts per webhook, retries included (not destinations refused before connecting).", ["municipality", "webhook"],
    registry=REGISTRY,
)
WEBHOOK_DESTINATION_REFUSED: Final = Counter(
    "vo_webhook_refused_total",
    "Webhook deliveries refused before connecting, by the class of address the URL resolved to "
    "(loopback, private, link_local, unspecified, multicast, reserved): a misconfigured URL or a "
    "name pointing where webhooks must not go.",
    ["municipality", "webhook", "reason"],
    registry=REGISTRY,
)
PORTAL_REQUESTS: Final = Counter(
    "vo_portal_requests_total", "Portal API requests answered, by endpoint.", ["endpoint"], registry=REGISTRY
)
ORIGIN_REFUSALS: Final = Counter(
    "vo_origin_refusals_total", "REST requests refused for their browser Origin, by reason.", ["reason"],
    registry=REGISTRY,
)
PLATFORM_OPTINS: Final = Counter(
    "vo_platform_optins_total",
    "Platform directory opt-in changes (profile.publish, PUT /api/v1/me/published-skills) by municipality: "
    "published (one skill or more) or withdrawn (none).",
    ["municipality", "change"],
    registry=REGISTRY,
)
