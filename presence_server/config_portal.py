"""Settings for what portals use: the people directory and webhooks.

Kept apart from :mod:`presence_server.config` so the portal features can grow
without touching the core settings module; :class:`~presence_server.config.Settings`
carries a ``portal`` section of :class:`PortalSettings`, and each municipality
(``auth.municipalities.<id>``) a ``webhooks`` table of :class:`WebhookSettings`
and a ``directory`` section of :class:`MunicipalityDirectorySettings` (the skills
it publishes platform-wide).

Webhooks are a table keyed by a name, not a list, so each one's secret can be
set from the environment like every other key, e.g.
``PRESENCE_AUTH__MUNICIPALITIES__ALTBACH__WEBHOOKS__INTRANET__SECRET=...``
(a list element could only be replaced as a whole, secret and URL together).
"""

from __future__ import annotations

import ipaddress
import re
from typing import Final, Literal

from pydantic import BaseModel, ConfigDict, Field, SecretStr, field_validator

from presence_server.webhook_guard import IPNetwork, never_allowed

__all__ = ["WebhookSettings", "PortalSettings", "MunicipalityDirectorySettings", "MAX_PUBLISH_SKILLS", "WEBHOOK_EVENTS", "check_webhook_names", "webhook_problems"]

#: The event families a webhook may subscribe to (docs/portal.md).
WebhookEvent = Literal["presence", "knock"]
WEBHOOK_EVENTS: Final[tuple[WebhookEvent, ...]] = ("presence", "knock")

#: At most this many skills a municipality publishes (and a person opts in to).
MAX_PUBLISH_SKILLS: Final = 100

# Webhook names become parts of environment variable names, which arrive lower-cased.
_WEBHOOK_NAME: Final = re.compile(r"^[a-z0-9][a-z0-9_-]{0,63}$")


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class WebhookSettings(_Section):
    """One receiver of a municipality's signed events."""

    url: str
    #: HMAC-SHA256 key for the signature header. Required (checked by the municipality,
    #: so a missing one is reported with every other problem); outside dev mode at
    #: least 32 bytes (checked by Settings, which knows dev_mode). Set it from the environment.
    secret: SecretStr | None = None
    events: list[WebhookEvent] = Field(default_factory=lambda: list(WEBHOOK_EVENTS), min_length=1)
    #: Non-global networks (CIDR) this receiver may resolve to: loopback for a relay on
    #: the same host, private ranges for a town intranet. Empty: public addresses only.
    #: Link-local, unspecified, multicast and reserved addresses stay refused
    #: (presence_server/webhook_guard.py).
    allow_networks: list[str] = Field(default_factory=list, max_length=64)

    @field_validator("url")
    @classmethod
    def _http_url(cls, value: str) -> str:
        if not value.startswith(("https://", "http://")) or len(value) > 2000:
            raise ValueError("must be an http(s) URL")
        return value

    @field_validator("allow_networks")
    @classmethod
    def _cidr_networks(cls, value: list[str]) -> list[str]:
        # Messages quote the entry: "10.0.0.1: ..." would read as a dotted key.
        problems: list[str] = []
        networks: list[str] = []
        for entry in value:
            try:
                network = ipaddress.ip_network(entry.strip(), strict=True)
            except ValueError as exc:
                problems.append(f"{entry!r} is not a CIDR network like '10.20.0.0/16' ({exc})")
                continue
            never = never_allowed(network)
            if never is not None:
                problems.append(f"{entry!r} is {never.replace('_', '-')}: such addresses are always refused")
                continue
            networks.append(str(network))
        if problems:
            raise ValueError("; ".join(problems))
        return networks

    @property
    def networks(self) -> tuple[IPNetwork, ...]:
        """``allow_networks`` parsed (validated above)."""
        return tuple(ipaddress.ip_network(n) for n in self.allow_networks)

    @property
    def key(self) -> bytes:
        """The secret as HMAC key bytes (empty if missing, which validation refuses)."""
        return self.secret.get_secret_value().encode() if self.secret is not None else b""


def check_webhook_names(names: list[str]) -> list[str]:
    """The names in ``names`` that are not valid webhook names (for config validation)."""
    return [name for name in names if not _WEBHOOK_NAME.match(name)]


def webhook_problems(webhooks: dict[str, WebhookSettings]) -> list[str]:
    """Missing secrets, phrased "key: message" relative to the municipality so the
    configuration error names the dotted key and its environment variable."""
    return [
        f"webhooks.{name}.secret: required (set it in the file or in the environment variable {{env}})"
        for name, hook in webhooks.items()
        if not hook.key
    ]


class MunicipalityDirectorySettings(_Section):
    """What one municipality shows of its staff beyond its cooperations (docs/portal.md,
    "Beyond the cooperation")."""

    #: Skills (as the town's tokens spell them; compared case-insensitively) its staff
    #: may publish to the whole platform. Each person still opts in per skill; nobody
    #: is published by this setting alone. Empty (the default): nobody of this town is
    #: ever found beyond its cooperations.
    publish_skills: list[str] = Field(default_factory=list, max_length=MAX_PUBLISH_SKILLS)

    @field_validator("publish_skills")
    @classmethod
    def _skill_names(cls, value: list[str]) -> list[str]:
        cleaned = [skill.strip() for skill in value]
        bad = [repr(skill) for skill in cleaned if not 1 <= len(skill) <= 100]
        if bad:
            raise ValueError(f"skills are 1 to 100 characters: {', '.join(bad)}")
        return list(dict.fromkeys(cleaned))


class PortalSettings(_Section):
    """The people directory behind the specialist finder and badges, and webhook delivery."""

    #: 0: people are findable only while online and their profile is forgotten when
    #: they go (the privacy default). > 0: profiles (name, municipality, department,
    #: job title, skills; no presence history) stay findable this many days after
    #: the person was last online.
    directory_retention_days: float = Field(default=0, ge=0, le=3650)
    #: Events waiting per webhook; when full, the oldest is dropped (and counted).
    webhook_queue_size: int = Field(default=1000, ge=1, le=100_000)
    #: One delivery attempt may take this long (connect, send, answer).
    webhook_timeout_seconds: float = Field(default=5, gt=0, le=60)
    #: Attempts after the first one fails (network error, timeout, 5xx, 429).
    webhook_retries: int = Field(default=3, ge=0, le=10)
    #: Pause before the first retry; doubles for each further one.
    webhook_backoff_seconds: float = Field(default=1, ge=0, le=60)
