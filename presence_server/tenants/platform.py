"""Platform administration: municipalities and cooperations added and changed at runtime.

Who may: the persons listed in ``auth.platform_admins`` (config), and nobody else
— not a town's admins, not guests, not a role in a token. The capability is
given by the operator's file because it reaches across towns: whoever adds a
municipality chooses the key its tokens are checked with, and could add a town
whose identity provider they run. A town's identity provider vouches only for
who someone is (``municipality/user_id``), never for this. A listed person's
municipality must be a configured one (checked when the config loads), so no
identity provider chosen at runtime can sign in a platform admin either.

What is checked before anything is written: ids, names, origins, the key
material (an RSA public key in PEM, or a JWKS URL; an HS256 secret in
development mode only), that a configured id is never added or changed here
(``conflict``), that members of a cooperation exist. Every change ends with a
campus change (``municipality_upserted``, ``cooperation_upserted``) that
reaches every node over the bus (docs/onboarding.md).

Secrets never leave: views show the algorithm, the key's SHA-256 fingerprint or
the JWKS URL, issuer and audience, and whether a secret is set.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import structlog

from presence_server import metrics
from presence_server.auth import TokenVerifier, check_municipality_auth
from presence_server.config import MunicipalityAuth, Settings
from presence_server.tenants.service import TenantService
from presence_server.tenants.store import TenantRecord
from rooms.actors import Actor
from rooms.audit import AuditSink
from rooms.campus import CampusService
from rooms.errors import DomainError, ErrorCode
from rooms.model import Cooperation

__all__ = ["PlatformService", "auth_view"]

log = structlog.get_logger(__name__)


def auth_view(conf: MunicipalityAuth) -> dict[str, Any]:
    """How a municipality's tokens are verified, without anything secret."""
    view: dict[str, Any] = {"algorithm": conf.algorithm, "issuer": conf.issuer, "audience": conf.audience}
    if conf.secret is not None:
        view["secret_set"] = True
    if conf.public_key is not None:
        view["key_sha256"] = hashlib.sha256(conf.public_key.strip().encode()).hexdigest()
    if conf.public_key_file is not None:
        view["key_file"] = conf.public_key_file
    if conf.jwks_url is not None:
        view["jwks_url"] = conf.jwks_url
    return view


class PlatformService:
    """The platform admin's use cases; the REST edge is :mod:`presence_server.platform_rest`."""

    def __init__(
        self,
        settings: Settings,
        tenants: TenantService,
        campus: CampusService,
        verifier: TokenVerifier,
        *,
        clock: Callable[[], float] = time.time,
        audit: AuditSink | None = None,
    ) -> None:
        self._settings = settings
        self._audit_sink = audit
        self._admins = frozenset(settings.auth.platform_admins)
        self._tenants = tenants
        self._campus = campus
        self._verifier = verifier
        self._clock = clock

    # -- who may ------------------------------------------------------------

    def is_platform_admin(self, actor: Actor) -> bool:
        return (
            not actor.is_guest
            and actor.person_id in self._admins
            and self._verifier.is_configured(actor.municipality_id)
        )

    def require_platform_admin(self, actor: Actor) -> None:
        if not self.is_platform_admin(actor):
            raise DomainError(ErrorCode.FORBIDDEN, "platform administration is for the platform admins in the configuration")

    # -- municipalities -----------------------------------------------------

    def municipalities(self, actor: Actor) -> list[dict[str, Any]]:
        """Every municipality: on the campus, configured or added at runtime."""
        self.require_platform_admin(actor)
        ids = set(self._campus.municipalities) | set(self._settings.auth.municipalities) | set(self._tenants.records)
        return [self._view(mid) for mid in sorted(ids)]

    async def add_municipality(self, actor: Actor, municipality_id: str, name: str, auth: MunicipalityAuth) -> dict[str, Any]:
        self.require_platform_admin(actor)
        self._check_new_auth(municipality_id, auth)
        if self._verifier.is_configured(municipality_id):
            raise _conflict(municipality_id, "is configured in the server's configuration file")
        if municipality_id in self._campus.municipalities:
            raise _conflict(municipality_id, "is already on the campus")
        record = TenantRecord(municipality_id, auth, self._clock())
        if not await self._tenants.store.create(record):
            raise _conflict(municipality_id, "already exists")
        self._tenants.install(record)
        # If this write fails (store away) the record exists: PATCH with the name completes it.
        await self._campus.upsert_municipality(municipality_id, name)
        await self._audit(actor, "municipality.added", municipality_id, {"name": name, "auth": auth_view(auth),
                                                                   "origins": list(auth.allowed_origins)})
        return self._view(municipality_id)

    async def update_municipality(
        self,
        actor: Actor,
        municipality_id: str,
        *,
        name: str | None = None,
        auth: MunicipalityAuth | None = None,
        origins: Sequence[str] | None = None,
    ) -> dict[str, Any]:
        """Change a runtime municipality: its name, identity provider settings (all
        of ``auth`` at once) or origins. Always re-announced to every node."""
        self.require_platform_admin(actor)
        if self._verifier.is_configured(municipality_id):
            raise _conflict(municipality_id, "is configured in the server's configuration file: change it there")
        old = await self._tenants.store.get(municipality_id)
        if old is None:
            raise DomainError(ErrorCode.NOT_FOUND, f"municipality {municipality_id!r}")
        conf = auth if auth is not None else old.auth
        allowed = list(origins) if origins is not None else list(old.auth.allowed_origins)
        conf = conf.model_copy(update={"allowed_origins": allowed})
        if auth is not None:
            self._check_new_auth(municipality_id, conf)
        record = TenantRecord(municipality_id, conf, self._clock())
        if not await self._tenants.store.replace(record):
            raise DomainError(ErrorCode.NOT_FOUND, f"municipality {municipality_id!r}")
        self._tenants.install(record)
        current = self._campus.municipalities.get(municipality_id)
        new_name = name if name is not None else (current.name if current is not None else municipality_id)
        await self._campus.upsert_municipality(municipality_id, new_name)
        change: dict[str, Any] = {}
        if name is not None:
            change["name"] = name
        if auth is not None:
            change["auth"] = auth_view(conf)
        if origins is not None:
            change["origins"] = allowed
        await self._audit(actor, "municipality.changed", municipality_id, change)
        return self._view(municipality_id)

    def _check_new_auth(self, municipality_id: str, auth: MunicipalityAuth) -> None:
        if auth.secret is not None and not self._settings.dev_mode:
            raise DomainError(
                ErrorCode.INVALID_PAYLOAD,
                "auth.secret: shared secrets only in development mode; give an RS256 key or jwks_url",
                field="auth.secret",
            )
        check_municipality_auth(municipality_id, auth)

    def _view(self, mid: str) -> dict[str, Any]:
        on_campus = self._campus.municipalities.get(mid)
        record = self._tenants.records.get(mid)
        configured = self._settings.auth.municipalities.get(mid)
        conf = configured or (record.auth if record is not None else None)
        return {
            "id": mid,
            "name": on_campus.name if on_campus is not None else None,
            "source": "config" if configured is not None else ("runtime" if record is not None else "campus"),
            "auth": None if conf is None else auth_view(conf),
            "origins": [] if conf is None else list(conf.allowed_origins),
            "updated_at": record.updated_at if record is not None and configured is None else None,
            "cooperations": sorted(c.id for c in self._campus.cooperations.values() if mid in c.members),
        }

    # -- cooperations -------------------------------------------------------

    def cooperations(self, actor: Actor) -> list[dict[str, Any]]:
        self.require_platform_admin(actor)
        return [_cooperation_view(c) for c in sorted(self._campus.cooperations.values(), key=lambda c: c.id)]

    async def add_cooperation(self, actor: Actor, cooperation_id: str, name: str, members: Sequence[str]) -> dict[str, Any]:
        self.require_platform_admin(actor)
        cooperation = await self._campus.create_cooperation(cooperation_id, name, members)
        await self._audit(actor, "cooperation.added", cooperation.id, _cooperation_view(cooperation))
        return _cooperation_view(cooperation)

    async def change_cooperation(
        self,
        actor: Actor,
        cooperation_id: str,
        *,
        name: str | None = None,
        members: Sequence[str] | None = None,
        add: Sequence[str] = (),
        remove: Sequence[str] = (),
    ) -> dict[str, Any]:
        """Rename, set the members, or add / remove one. Watchers of its floors
        whose municipality left lose them at once (``floor.revoked``)."""
        self.require_platform_admin(actor)
        before = self._campus.cooperations.get(cooperation_id)
        after = await self._campus.update_cooperation(cooperation_id, name=name, members=members, add=add, remove=remove)
        old = set(before.members) if before is not None else set()
        for mid in [m for m in after.members if m not in old]:
            await self._audit(actor, "cooperation.member_added", after.id, {"municipality": mid})
        for mid in sorted(old - set(after.members)):
            await self._audit(actor, "cooperation.member_removed", after.id, {"municipality": mid})
        if before is not None and name is not None and before.name != after.name:
            await self._audit(actor, "cooperation.renamed", after.id, {"name": after.name})
        return _cooperation_view(after)

    # -- audit --------------------------------------------------------------

    async def _audit(self, actor: Actor, action: str, target: str, change: Mapping[str, Any]) -> None:
        """THE place where platform changes are recorded: ``municipality.added``,
        ``municipality.changed``, ``cooperation.added``, ``cooperation.member_added``,
        ``cooperation.member_removed``, ``cooperation.renamed``. ``change`` never holds
        a secret (views only). Readable by the admins of the municipality concerned
        (every member town, for a cooperation) and of the platform admin's own town."""
        metrics.PLATFORM_CHANGES.labels(action).inc()
        log.info("platform_change", actor=actor.person_id, action=action, target=target, change=dict(change))
        if self._audit_sink is None:
            return
        kind = "municipality" if action.startswith("municipality.") else "cooperation"
        cooperation = self._campus.cooperations.get(target) if kind == "cooperation" else None
        concerned = [target] if cooperation is None else list(cooperation.members)
        scopes = tuple(dict.fromkeys([*concerned, actor.municipality_id]))
        try:
            await self._audit_sink.record(
                action, actor=actor.person_id, target={kind: target}, change=change, scopes=scopes
            )
        except Exception:  # the change happened: a broken audit must not report it as failed
            log.exception("platform_audit_failed", action=action, target=target)


def _conflict(municipality_id: str, why: str) -> DomainError:
    return DomainError(ErrorCode.CONFLICT, f"id: {municipality_id!r} {why}", field="id")


def _cooperation_view(c: Cooperation) -> dict[str, Any]:
    return {"id": c.id, "name": c.name, "members": list(c.members)}
