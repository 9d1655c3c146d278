"""Invitation links: created by a project's coordinators, redeemed by guests,
revoked — and revoking ends the guests' sessions on every node.

* :meth:`InvitationService.create` makes a record and a secret code (shown
  once, stored only as a hash). The link carries the code in its fragment
  (``/invite#<code>``), so it never reaches a server log or a ``Referer``.
* :meth:`InvitationService.redeem` counts one use atomically in the store and
  signs a guest token with the platform key: roles ``["guest"]``, confined to
  the project, subject ``gast-<invitation id>-<n>`` (the n-th use; a person is
  always (municipality, subject), the municipality the host's), expiring no
  later than the invitation or the project.
* :meth:`InvitationService.revoke` marks the record revoked, ends the guests
  of that invitation on this node and tells the other nodes over the bus
  (channel ``invitations``). The bus is at most once, so every node also
  checks its guests' invitations every ``recheck_seconds``; a revoked
  invitation's token is refused at connect and at ``auth.refresh``.
* A deleted project revokes its invitations (the campus tells every node, and
  each ends its guests of the project).

Nothing about a guest is stored: the record counts uses, not who.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from typing import Any, Final, Protocol

import structlog
from prometheus_client import Counter

from presence_server.auth import Identity, mint_guest_token
from presence_server.config_invitations import InvitationSettings
from presence_server.invitations.store import (
    Invitation,
    InvitationStore,
    hash_code,
    new_code,
    new_invitation_id,
)
from presence_server.metrics import REGISTRY
from presence_server.supervise import supervised
from presence_server.tasks import cancel_and_wait
from rooms import access
from rooms.actors import Actor
from rooms.audit import AuditSink
from rooms.campus import CampusService
from rooms.changes import CampusChange
from rooms.errors import DomainError, ErrorCode, StoreUnavailable
from rooms.project import Project

__all__ = ["InvitationService", "InvitationListener", "INVITATIONS", "BUS_CHANNEL"]

log = structlog.get_logger(__name__)

#: The bus channel on which nodes tell each other about revocations.
BUS_CHANNEL: Final = "invitations"

INVITATIONS: Final = Counter(
    "vo_invitations_total",
    "Invitation events on this node: created, redeemed, refused (a redemption refused, by code), revoked, "
    "sessions_ended (guest sessions ended by a revocation or a deleted project).",
    ["event", "code"],
    registry=REGISTRY,
)


class InvitationListener(Protocol):
    """Who holds guest sessions on this node (the gateway)."""

    async def end_guests(self, *, invitation_id: str | None, project_id: str | None, detail: str) -> int:
        """End every local guest session of the invitation (or of the project); how many."""

    def live_invitations(self) -> set[str]:
        """The invitations of the guest sessions on this node."""


Publish = Callable[[dict[str, Any]], Awaitable[None]]


class InvitationService:
    def __init__(
        self,
        store: InvitationStore,
        campus: CampusService,
        settings: InvitationSettings,
        *,
        max_token_ttl: float,
        clock: Callable[[], float] = time.time,
        audit: AuditSink | None = None,
    ) -> None:
        self.store = store
        self._audit_sink = audit
        self._campus = campus
        self._settings = settings
        self._secret = None if settings.signing_secret is None else settings.signing_secret.get_secret_value()
        self._max_token_ttl = max_token_ttl
        self._clock = clock
        self._listeners: list[InvitationListener] = []
        self._publish: Publish | None = None
        self._inbox: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
        self._tasks: list[asyncio.Task[None]] = []

    @property
    def enabled(self) -> bool:
        return self._secret is not None

    def add_listener(self, listener: InvitationListener) -> None:
        self._listeners.append(listener)

    def set_publisher(self, publish: Publish) -> None:
        """Cluster mode: how to tell the other nodes (the bus, channel :data:`BUS_CHANNEL`)."""
        self._publish = publish

    async def start(self) -> None:
        self._tasks = [supervised("invitation_recheck", self._recheck_forever),
                       supervised("invitation_bus", self._apply_bus_forever)]  # fmt: skip

    async def close(self) -> None:
        for task in self._tasks:
            await cancel_and_wait(task)
        self._tasks = []

    # ------------------------------------------------------------ coordinators
    async def create(
        self,
        actor: Actor,
        project_id: str,
        *,
        display_name: str,
        max_uses: int = 1,
        expires_at: float | None = None,
        expires_in_seconds: float | None = None,
    ) -> tuple[Invitation, str]:
        """A new link for ``project_id`` (coordinators only); the record and its code."""
        self._require_enabled()
        project = self._coordinated(actor, project_id)
        now = self._clock()
        if expires_at is not None and expires_in_seconds is not None:
            raise DomainError(ErrorCode.INVALID_PAYLOAD, "give expires_at or expires_in_seconds, not both",
                              field="expires_at")  # fmt: skip
        if expires_in_seconds is not None:
            expires_at = now + expires_in_seconds
        if expires_at is None:
            expires_at = now + self._settings.default_ttl_seconds
        if expires_at <= now:
            raise DomainError(ErrorCode.INVALID_PAYLOAD, "expires_at: must be in the future", field="expires_at")
        if expires_at > now + self._settings.max_ttl_seconds:
            raise DomainError(ErrorCode.INVALID_PAYLOAD, f"expires_at: at most {self._settings.max_ttl_seconds} s ahead",
                              field="expires_at")  # fmt: skip
        if project.ends_at is not None:
            if project.ends_at <= now:
                raise DomainError(ErrorCode.CONFLICT, "the project has ended")
            expires_at = min(expires_at, project.ends_at)  # never beyond the project's end
        if self._campus.project_floor(project.id) is None:
            raise DomainError(ErrorCode.CONFLICT, "the project has no floor")
        active = [i for i in await self.store.for_project(project.id) if not i.revoked and i.expires_at > now]
        if len(active) >= self._settings.max_per_project:
            raise DomainError(ErrorCode.CONFLICT, f"at most {self._settings.max_per_project} open invitations per project")
        code = new_code()
        invitation = Invitation(
            id=new_invitation_id(),
            project_id=project.id,
            municipality=actor.municipality_id,
            display_name=display_name,
            max_uses=max_uses,
            uses=0,
            expires_at=float(expires_at),
            revoked=False,
            created_by=actor.person_id,
            created_at=now,
            code_hash=hash_code(code),
        )
        await self.store.add(invitation)
        INVITATIONS.labels("created", "").inc()
        await self._audit("invitation.created", actor, invitation)
        log.info("invitation_created", invitation=invitation.id, project=project.id, person=actor.person_id,
                 max_uses=max_uses, expires_at=invitation.expires_at)  # fmt: skip
        return invitation, code

    async def of_project(self, actor: Actor, project_id: str) -> list[Invitation]:
        project = self._coordinated(actor, project_id)
        return await self.store.for_project(project.id)

    async def revoke(self, actor: Actor, project_id: str, invitation_id: str) -> Invitation:
        """Revoke (idempotent) and end its guests' sessions here and on every other node."""
        project = self._coordinated(actor, project_id)
        existing = await self.store.get(invitation_id)
        if existing is None or existing.project_id != project.id:
            raise DomainError(ErrorCode.NOT_FOUND, f"invitation {invitation_id!r}")
        invitation = await self.store.revoke(invitation_id)
        if invitation is None:  # purged meanwhile
            raise DomainError(ErrorCode.NOT_FOUND, f"invitation {invitation_id!r}")
        if not existing.revoked:
            INVITATIONS.labels("revoked", "").inc()
            await self._audit("invitation.revoked", actor, invitation)
            log.info("invitation_revoked", invitation=invitation_id, project=project.id, person=actor.person_id)
        await self._end_local(invitation_id=invitation_id, project_id=None, detail="revoked")
        await self._tell_others({"revoked": invitation_id})
        return invitation

    # ------------------------------------------------------------------ guests
    async def redeem(self, code: str) -> dict[str, Any]:
        """One use of the code: a guest token for the project, or a refusal
        (``not_found``, ``invitation_revoked``, ``invitation_expired``, ``invitation_used_up``)."""
        self._require_enabled()
        assert self._secret is not None
        now = self._clock()
        code_hash = hash_code(code)
        try:
            found = await self.store.peek(code_hash)
            if found is None:
                raise DomainError(ErrorCode.NOT_FOUND, "invitation")
            project, floor_id = self._live_project(found.project_id)
            if project.ends_at is not None and project.ends_at <= now:
                raise DomainError(ErrorCode.INVITATION_EXPIRED, "the project has ended")
            invitation = await self.store.redeem(code_hash, now=now)
        except DomainError as exc:
            INVITATIONS.labels("refused", exc.code.value).inc()
            raise
        ends = [invitation.expires_at, now + self._settings.session_ttl_seconds, now + self._max_token_ttl]
        if project.ends_at is not None:
            ends.append(project.ends_at)
        expires_at = int(min(ends))
        subject = f"gast-{invitation.id}-{invitation.uses}"
        token = mint_guest_token(
            self._secret,
            municipality=invitation.municipality,
            user_id=subject,
            name=invitation.display_name,
            project=project.id,
            invitation_id=invitation.id,
            expires_at=expires_at,
            now=now,
        )
        INVITATIONS.labels("redeemed", "").inc()
        await self._audit("invitation.redeemed", None, invitation)
        log.info("invitation_redeemed", invitation=invitation.id, project=project.id, use=invitation.uses)
        return {
            "token": token,
            "project_id": project.id,
            "floor_id": floor_id,
            "expires_at": expires_at,
            "person": f"{invitation.municipality}/{subject}",
            "display_name": invitation.display_name,
        }

    async def check_active(self, identity: Identity) -> None:
        """Refuse a guest token whose invitation was revoked, purged or whose project is gone."""
        if identity.invitation_id is None:
            return
        invitation = await self.store.get(identity.invitation_id)
        if invitation is None or invitation.revoked:
            raise DomainError(ErrorCode.INVITATION_REVOKED)
        self._live_project(invitation.project_id)

    # ------------------------------------------------------------ other nodes
    def on_bus(self, body: dict[str, Any]) -> None:
        """A message on :data:`BUS_CHANNEL` from another node (called on the event loop)."""
        self._inbox.put_nowait(body)

    async def _apply_bus_forever(self) -> None:
        while True:
            body = await self._inbox.get()
            revoked = body.get("revoked")
            if isinstance(revoked, str):
                await self._end_local(invitation_id=revoked, project_id=None, detail="revoked")

    async def _tell_others(self, body: dict[str, Any]) -> None:
        if self._publish is None:
            return
        try:
            await self._publish(body)
        except StoreUnavailable:
            # Best effort after the decision: the record says revoked, and every
            # node's recheck ends the sessions within recheck_seconds.
            log.warning("invitation_publish_failed", body=body)

    async def _recheck_forever(self) -> None:
        """The safety net: end local guests whose invitation is gone or revoked; purge old records."""
        while True:
            await asyncio.sleep(self._settings.recheck_seconds)
            try:
                await self.recheck()
                keep = self._settings.retention_days * 86400
                await self.store.purge(expired_before=self._clock() - keep)
            except StoreUnavailable:
                log.warning("invitation_recheck_unavailable")

    async def recheck(self) -> int:
        ended = 0
        live = set().union(*(listener.live_invitations() for listener in self._listeners))
        for invitation_id in live:
            invitation = await self.store.get(invitation_id)
            if invitation is None or invitation.revoked:
                ended += await self._end_local(invitation_id=invitation_id, project_id=None, detail="revoked")
        return ended

    # -------------------------------------------------------- campus listener
    async def campus_changed(self, change: CampusChange) -> None:
        """A deleted project takes its invitations with it (recorded once, by the node
        that deleted it); each node's gateway ends its own guests of the project."""
        if change.kind != "project_deleted" or change.project is None or change.remote:
            return
        try:
            for invitation in await self.store.for_project(change.project.id):
                if not invitation.revoked:
                    await self.store.revoke(invitation.id)
                    await self._audit("invitation.revoked", None, invitation)
        except StoreUnavailable:  # the guests' tokens are refused anyway: the project is gone
            log.warning("invitation_project_revoke_unavailable", project=change.project.id)

    # -------------------------------------------------------------- internals
    async def _end_local(self, *, invitation_id: str | None, project_id: str | None, detail: str) -> int:
        ended = 0
        for listener in self._listeners:
            ended += await listener.end_guests(invitation_id=invitation_id, project_id=project_id, detail=detail)
        if ended:
            INVITATIONS.labels("sessions_ended", "").inc(ended)
        return ended

    def _require_enabled(self) -> None:
        if self._secret is None:
            raise DomainError(ErrorCode.UNAVAILABLE, "invitations are not configured (invitations.signing_secret)")

    def _coordinated(self, actor: Actor, project_id: str) -> Project:
        project = self._campus.visible_project(actor, project_id)  # not_found unless a member
        if not access.is_coordinator(actor, project):
            raise DomainError(ErrorCode.FORBIDDEN, f"not a coordinator of project {project_id!r}")
        return project

    def _live_project(self, project_id: str) -> tuple[Project, str]:
        project = self._campus.projects.get(project_id)
        floor = self._campus.project_floor(project_id)
        if project is None or floor is None:
            raise DomainError(ErrorCode.INVITATION_REVOKED, "the project has ended")
        return project, floor.id

    async def _audit(self, event: str, actor: Actor | None, invitation: Invitation) -> None:
        """The audit trail: ``invitation.created``, ``invitation.revoked`` (actor None:
        the project went), ``invitation.redeemed`` (actor None: never anything about a
        guest, only that a use was counted). Readable by the project's coordinators
        and the admins of its towns."""
        if self._audit_sink is None:
            return
        floor = self._campus.project_floor(invitation.project_id)
        scopes, _ = self._campus.audit_scope(floor, fallback=[invitation.municipality])
        change: dict[str, Any] = {"display_name": invitation.display_name, "uses": invitation.uses,
                                  "max_uses": invitation.max_uses, "expires_at": invitation.expires_at}  # fmt: skip
        try:
            await self._audit_sink.record(
                event, actor=None if actor is None else actor.person_id,
                target={"project": invitation.project_id, "invitation": invitation.id},
                change=change, scopes=scopes, project=invitation.project_id,
            )  # fmt: skip
        except Exception:  # the act happened: a broken audit must not report it as failed
            log.exception("invitation_audit_failed", invitation=invitation.id, event=event)
