"""The Socket.IO edge: authenticate, validate, dispatch, answer.

Every client event is a request with an acknowledgement that answers
``{"ok": true, ...}`` or ``{"ok": false, "error": {"code", "message"}}``. The
dispatch table maps an event name to its message type and handler; one wrapper
does what every event needs (size and rate limits, token expiry, validation,
logging context, error shape, metrics), so handlers only hold the use case.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from typing import Any, Awaitable, Callable, Final, Sequence

import socketio
import structlog
from pydantic import BaseModel, ValidationError

from presence_server import messages as m
from presence_server import metrics
from presence_server import invitations_api as invitations
from presence_server import projects_api as projects
from presence_server.auth import Identity, TokenVerifier
from presence_server.config import Settings
from presence_server.calls.service import CallService
from presence_server.invitations.service import InvitationService
from presence_server.knocks.service import KnockService
from presence_server.origins import TownOrigins
from presence_server.session_expiry import ExpiryTimers
from presence_server.presence.service import PresenceHooks, PresenceService
from presence_server.presence.state import Status
from presence_server.ratelimit import TokenBucket
from presence_server.session_limit import SessionLimit
from presence_server.transport_sio import GatewayTransport
from rooms import access
from rooms.actors import Actor
from rooms.changes import CampusChange
from rooms.model import OwnerKind
from rooms.errors import DomainError, ErrorCode, StoreUnavailable
from rooms.person import PersonId

__all__ = ["Gateway", "MAX_WATCHED_FLOORS"]

log = structlog.get_logger(__name__)

MAX_WATCHED_FLOORS: Final = 32  # bounds per-session state; a UI shows a handful

#: What a degraded node (Redis away, or fenced and recovering) still serves: no store needed.
_SERVED_DEGRADED: Final = frozenset({"campus.get", "floor.unwatch"})


@dataclass(slots=True)
class Session:
    sid: str
    identity: Identity
    lang: str
    bucket: TokenBucket
    watching: set[str] = field(default_factory=set)

    @property
    def actor(self) -> Actor:
        return self.identity.actor


Handler = Callable[[Session, Any], Awaitable[dict[str, Any]]]


class Gateway(PresenceHooks):
    def __init__(
        self,
        sio: socketio.AsyncServer,
        transport: GatewayTransport,
        *,
        settings: Settings,
        verifier: TokenVerifier,
        presence: PresenceService,
        knocks: KnockService,
        calls: CallService,
        origins: TownOrigins | None = None,
    ) -> None:
        self._sio = sio
        self._transport = transport
        self._settings = settings
        self._verifier = verifier
        self._presence = presence
        self._knocks = knocks
        self._calls = calls
        self._campus = presence.campus
        self._sessions: dict[str, Session] = {}
        self._degraded = False  # cluster: Redis away, or this node fenced and recovering
        self._invitations: InvitationService | None = None  # attach_invitations
        # Sessions per person on this node: the limit, and vo_online_users.
        self._session_limit = SessionLimit(settings.limits.max_sessions_per_person)
        self._leeway = settings.auth.leeway_seconds
        self._refresh_grace = settings.auth.refresh_grace_seconds
        self._expiry = ExpiryTimers(self._expire)
        # Per municipality: the portals allowed to embed its staff's sessions; and
        # the union of all of them: an origin outside it is refused before any token.
        # Shared with the HTTP API and changed when a municipality is added at runtime.
        self._origins = origins or TownOrigins(
            settings.http.cors_origins,
            {mid: conf.allowed_origins for mid, conf in settings.auth.municipalities.items()},
            own=[settings.http.public_url],
        )
        presence.add_hooks(self)
        self._campus.add_listener(self)
        self._table: dict[str, tuple[type[BaseModel], Handler]] = {
            "campus.get": (m.Empty, self._campus_get),
            "floor.watch": (m.FloorRef, self._floor_watch),
            "floor.unwatch": (m.FloorRef, self._floor_unwatch),
            "presence.move": (m.Move, self._move),
            "presence.leave": (m.Empty, self._leave),
            "presence.status": (m.SetStatus, self._status),
            "knock.send": (m.KnockSend, self._knock_send),
            "knock.answer": (m.KnockAnswer, self._knock_answer),
            "knock.cancel": (m.KnockRef, self._knock_cancel),
            "auth.refresh": (m.AuthRefresh, self._auth_refresh),
            "call.join": (m.CallJoin, self._call_join),
            "call.leave": (m.Empty, self._call_leave),
            "call.signal": (m.CallSignal, self._call_signal),
            "call.ring": (m.CallRing, self._call_ring),
            "call.answer": (m.CallAnswer, self._call_answer),
            "call.cancel": (m.RingRef, self._call_cancel),
            "call.note": (m.CallNote, self._call_note),
            "project.create": (projects.ProjectCreate, self._project_create),
            "project.list": (m.Empty, self._project_list),
            "project.update": (projects.ProjectUpdate, self._project_update),
        }
        sio.on("connect", self._on_connect)
        sio.on("disconnect", self._on_disconnect)
        for event in self._table:
            sio.on(event, self._bind(event))
        sio.on("*", self._on_unknown)

    @property
    def events(self) -> list[str]:
        return sorted(self._table)

    def add_event(self, event: str, model: type[BaseModel], handler: Handler) -> None:
        """One more client event, for features wired after the gateway (the portal's
        ``profile.publish``); dispatched like every other (limits, validation, errors)."""
        if event in self._table:
            raise ValueError(f"{event} is already handled")
        self._table[event] = (model, handler)
        self._sio.on(event, self._bind(event))

    def session(self, sid: str) -> Session | None:
        return self._sessions.get(sid)

    @property
    def session_count(self) -> int:
        return len(self._sessions)

    def _acquire(self, actor: Actor) -> bool:
        """One more session of ``actor``'s person, unless at the limit. vo_online_users
        counts the people holding at least one session (or a connect under way) here."""
        held = self._session_limit.acquire(actor.person_id)
        if held == 1:
            metrics.ONLINE_USERS.labels(actor.municipality_id).inc()
        return held > 0

    def _release(self, actor: Actor) -> None:
        if self._session_limit.release(actor.person_id) == 0:
            metrics.ONLINE_USERS.labels(actor.municipality_id).dec()

    # ------------------------------------------------------------ connection
    async def _on_connect(self, sid: str, environ: dict[str, Any], auth: Any = None) -> bool:
        lang = _language(auth, environ)
        if self._degraded:  # the store cannot take a session now (or would lose it)
            refusal = DomainError(ErrorCode.UNAVAILABLE)
            metrics.ERRORS.labels(refusal.code.value).inc()
            raise socketio.exceptions.ConnectionRefusedError(refusal.code.value, refusal.to_wire(lang))
        token = auth.get("token") if isinstance(auth, dict) else None
        # The page's origin, and the page that embeds it (the iframe page names its
        # parent): each must be allowed, first for anyone, then for the token's town.
        origins = [environ.get("HTTP_ORIGIN"), _embedder(auth)]
        try:
            if not all(self._origins.known(origin, environ) for origin in origins):
                raise DomainError(ErrorCode.ORIGIN_NOT_ALLOWED)
            # A guest token of a revoked invitation is refused in verify() (set_guest_check).
            identity = await self._verifier.verify(token if isinstance(token, str) else None)
            mid = identity.actor.municipality_id
            if any(self._origins.allowed_for(mid, origin, environ) is False for origin in origins):
                raise DomainError(ErrorCode.MUNICIPALITY_NOT_ALLOWED)
        except DomainError as exc:
            metrics.ERRORS.labels(exc.code.value).inc()
            log.info("connect_refused", sid=sid, code=exc.code.value, detail=exc.detail, origins=origins)
            raise socketio.exceptions.ConnectionRefusedError(exc.code.value, exc.to_wire(lang)) from None
        actor = identity.actor
        # Counted before the first await below, so concurrent connects cannot overshoot.
        if not self._acquire(actor):
            limit = self._session_limit.max_sessions
            refusal = DomainError(ErrorCode.TOO_MANY_SESSIONS, f"at most {limit} per person", limit=limit)
            metrics.ERRORS.labels(refusal.code.value).inc()
            log.info(
                "connect_refused", sid=sid, code=refusal.code.value, person=actor.person_id,
                municipality=actor.municipality_id,
            )
            raise socketio.exceptions.ConnectionRefusedError(refusal.code.value, refusal.to_wire(lang))
        limits = self._settings.limits
        session = Session(sid, identity, lang, TokenBucket(limits.events_per_second, limits.burst))
        self._sessions[sid] = session
        try:
            await self._transport.attach(sid, actor.person_id, environ)
            member = await self._presence.connect(sid, actor)
            knocks = await self._knocks.pending_for(actor.person_id)
        except BaseException as failure:
            # Refused after all: the session never existed, and its slot is free again.
            del self._sessions[sid]
            self._transport.detach(sid)
            self._release(actor)
            if not isinstance(failure, StoreUnavailable):
                raise
            refusal = DomainError(ErrorCode.UNAVAILABLE)
            metrics.ERRORS.labels(refusal.code.value).inc()
            raise socketio.exceptions.ConnectionRefusedError(refusal.code.value, refusal.to_wire(lang)) from None
        metrics.SESSIONS.inc()
        self._expiry.schedule(sid, self._deadline(identity))
        self._transport.post_welcome(
            sid,
            {
                "me": member.to_wire(),
                "location": {"floor_id": member.floor_id, "room_id": member.room_id},
                "knocks": knocks,
                "token_expires_at": identity.expires_at,
                "grace_seconds": self._settings.presence.grace_seconds,
            },
        )
        log.info("connected", sid=sid, person=actor.person_id, municipality=actor.municipality_id)
        return True

    async def _on_disconnect(self, sid: str, reason: Any = None) -> None:
        session = self._sessions.pop(sid, None)
        if session is None:
            return
        self._expiry.cancel(sid)
        self._transport.detach(sid)
        self._release(session.actor)  # auth.refresh keeps the person
        metrics.SESSIONS.dec()
        try:
            await self._presence.disconnect(sid, session.actor.person_id)
        except StoreUnavailable:
            # The store is away: the session stays registered there until the
            # node re-registers its sessions after the outage and removes it.
            log.warning("disconnect_unregistered", sid=sid)
        log.info(
            "disconnected", sid=sid, person=session.actor.person_id,
            municipality=session.actor.municipality_id, reason=str(reason),
        )

    # -------------------------------------------------------------- dispatch
    def _bind(self, event: str) -> Callable[..., Awaitable[dict[str, Any]]]:
        async def handle(sid: str, *args: Any) -> dict[str, Any]:
            return await self._dispatch(event, sid, args)

        return handle

    async def _on_unknown(self, event: str, sid: str, *args: Any) -> dict[str, Any]:
        metrics.EVENTS_IN.labels("unknown").inc()
        session = self._sessions.get(sid)
        lang = session.lang if session else "en"
        limited = session is not None and not session.bucket.take(time.monotonic())
        exc = DomainError(ErrorCode.RATE_LIMITED if limited else ErrorCode.UNKNOWN_EVENT, None if limited else event[:64])
        metrics.ERRORS.labels(exc.code.value).inc()
        return _failure(exc, lang)

    async def _dispatch(self, event: str, sid: str, args: tuple[Any, ...]) -> dict[str, Any]:
        metrics.EVENTS_IN.labels(event).inc()
        session = self._sessions.get(sid)
        if session is None:
            return _failure(DomainError(ErrorCode.UNAUTHENTICATED), "en")
        actor = session.actor
        structlog.contextvars.bind_contextvars(sid=sid, person=actor.person_id, municipality=actor.municipality_id)
        try:
            model, handler = self._table[event]
            # Rate first: a flood of oversized or malformed requests costs its sender, not us.
            if not session.bucket.take(time.monotonic()):
                raise DomainError(ErrorCode.RATE_LIMITED)
            if len(args) > 1:
                raise DomainError(ErrorCode.INVALID_PAYLOAD, "one payload object expected")
            data = args[0] if args else None
            self._check_size(data)
            # The same leeway as at connect, so a token that may connect may also act.
            if event != "auth.refresh" and session.identity.expires_at + self._leeway <= time.time():
                raise DomainError(ErrorCode.TOKEN_EXPIRED)
            try:
                message = model.model_validate({} if data is None else data)
            except ValidationError as exc:
                raise m.validation_error(exc) from None
            if self._degraded and event not in _SERVED_DEGRADED:
                raise DomainError(ErrorCode.UNAVAILABLE)
            result = await handler(session, message)
            return {"ok": True, **result}
        except DomainError as exc:
            metrics.ERRORS.labels(exc.code.value).inc()
            log.info("request_refused", request=event, code=exc.code.value, detail=exc.detail)
            return _failure(exc, session.lang)
        except StoreUnavailable as exc:
            metrics.ERRORS.labels(ErrorCode.UNAVAILABLE.value).inc()
            log.warning("request_unavailable", request=event, error=repr(exc))
            return _failure(DomainError(ErrorCode.UNAVAILABLE), session.lang)
        except Exception:
            metrics.ERRORS.labels(ErrorCode.INTERNAL.value).inc()
            log.exception("request_failed", request=event)
            return _failure(DomainError(ErrorCode.INTERNAL), session.lang)
        finally:
            structlog.contextvars.clear_contextvars()

    def _check_size(self, data: Any) -> None:
        if data is None:
            return
        limit = self._settings.limits.max_event_bytes
        try:
            size = len(json.dumps(data, separators=(",", ":"), ensure_ascii=False).encode())
        except (TypeError, ValueError):  # binary attachments and the like
            raise DomainError(ErrorCode.INVALID_PAYLOAD, "payload must be a JSON object") from None
        if size > limit:
            raise DomainError(ErrorCode.PAYLOAD_TOO_LARGE, f"{size} > {limit} bytes", limit=limit)

    # -------------------------------------------------------------- handlers
    async def _campus_get(self, s: Session, _: m.Empty) -> dict[str, Any]:
        return {"campus": self._campus.campus_view(s.actor)}

    async def _floor_watch(self, s: Session, msg: m.FloorRef) -> dict[str, Any]:
        self._campus.visible_floor(s.actor, msg.floor_id)  # refuse before subscribing
        if msg.floor_id not in s.watching and len(s.watching) >= MAX_WATCHED_FLOORS:
            raise DomainError(ErrorCode.CONFLICT, f"at most {MAX_WATCHED_FLOORS} floors at once")
        # Subscribe first, then snapshot: any diff after the snapshot reaches this
        # session; diffs at or below the snapshot's seq are dropped by the client.
        await self._transport.watch(s.sid, msg.floor_id)
        s.watching.add(msg.floor_id)
        try:
            snapshot = await self._presence.floor_view(s.actor, msg.floor_id)
        except BaseException:
            self._transport.watch_aborted(msg.floor_id)
            raise
        self._transport.watch_started(msg.floor_id, snapshot["seq"])
        return {"snapshot": snapshot}

    async def _floor_unwatch(self, s: Session, msg: m.FloorRef) -> dict[str, Any]:
        if msg.floor_id in s.watching:
            s.watching.discard(msg.floor_id)
            await self._transport.unwatch(s.sid, msg.floor_id)
        return {}

    async def _move(self, s: Session, msg: m.Move) -> dict[str, Any]:
        return {"location": await self._presence.move(s.actor, msg.floor_id, msg.room_id)}

    async def _leave(self, s: Session, _: m.Empty) -> dict[str, Any]:
        await self._presence.leave_floor(s.actor)
        return {"location": await self._presence.location(s.actor.person_id)}

    async def _status(self, s: Session, msg: m.SetStatus) -> dict[str, Any]:
        cap = self._settings.presence.status_text_max
        if len(msg.text) > cap:
            raise DomainError(ErrorCode.INVALID_PAYLOAD, f"text: at most {cap} characters", field="text")
        result = await self._presence.set_status(s.sid, Status(msg.status), msg.text, all_sessions=msg.scope == "user")
        return {"presence": result}

    async def _knock_send(self, s: Session, msg: m.KnockSend) -> dict[str, Any]:
        cap = self._settings.knock.message_max
        if len(msg.message) > cap:
            raise DomainError(ErrorCode.INVALID_PAYLOAD, f"message: at most {cap} characters", field="message")
        return await self._knocks.knock(s.actor, msg.room_id, msg.message)

    async def _knock_answer(self, s: Session, msg: m.KnockAnswer) -> dict[str, Any]:
        return await self._knocks.answer(s.actor, msg.knock_id, msg.admit)

    async def _knock_cancel(self, s: Session, msg: m.KnockRef) -> dict[str, Any]:
        return await self._knocks.cancel(s.actor, msg.knock_id)

    async def _call_join(self, s: Session, msg: m.CallJoin) -> dict[str, Any]:
        return await self._calls.join(s.actor, msg.room_id)

    async def _call_leave(self, s: Session, _: m.Empty) -> dict[str, Any]:
        return await self._calls.leave(s.actor)

    async def _call_signal(self, s: Session, msg: m.CallSignal) -> dict[str, Any]:
        return await self._calls.signal(s.actor, msg.call_id, PersonId(msg.to), msg.kind, msg.data)

    async def _call_ring(self, s: Session, msg: m.CallRing) -> dict[str, Any]:
        return await self._calls.ring(s.actor, PersonId(msg.person))

    async def _call_answer(self, s: Session, msg: m.CallAnswer) -> dict[str, Any]:
        return await self._calls.answer(s.actor, msg.ring_id, msg.accept)

    async def _call_cancel(self, s: Session, msg: m.RingRef) -> dict[str, Any]:
        return await self._calls.cancel(s.actor, msg.ring_id)

    async def _call_note(self, s: Session, msg: m.CallNote) -> dict[str, Any]:
        return await self._calls.note(s.actor, PersonId(msg.person), msg.text)

    async def _project_create(self, s: Session, msg: projects.ProjectCreate) -> dict[str, Any]:
        return await projects.create_project(self._campus, s.actor, msg)

    async def _project_list(self, s: Session, _: m.Empty) -> dict[str, Any]:
        return projects.list_projects(self._campus, s.actor)

    async def _project_update(self, s: Session, msg: projects.ProjectUpdate) -> dict[str, Any]:
        return await projects.update_project(self._campus, s.actor, msg.project_id, msg)

    async def _auth_refresh(self, s: Session, msg: m.AuthRefresh) -> dict[str, Any]:
        identity = await self._verifier.verify(msg.token)  # refuses a revoked invitation's token
        old = s.actor
        if identity.actor.person_id != old.person_id:  # (municipality, user id): both must match
            raise DomainError(ErrorCode.FORBIDDEN, "token is for another person")
        s.identity = identity
        self._expiry.schedule(s.sid, self._deadline(identity))
        await self._presence.update_actor(identity.actor)
        return {"token_expires_at": identity.expires_at}

    # ---------------------------------------------------------------- expiry
    def _deadline(self, identity: Identity) -> float:
        """When a session holding ``identity`` is cut off unless it refreshes; an
        invited guest's also at their project's end (it may have moved earlier)."""
        deadline = identity.expires_at + self._leeway + self._refresh_grace
        project_end = self._guest_project_end(identity)
        return deadline if project_end is None else min(deadline, project_end)

    def _guest_project_end(self, identity: Identity) -> float | None:
        if identity.invitation_id is None or identity.actor.project is None:
            return None
        project = self._campus.projects.get(identity.actor.project)
        return None if project is None else project.ends_at

    async def _expire(self, sid: str) -> None:
        """The session's token expired and the grace to refresh it is over: no more
        floor updates, a last ``session.ended``, and the disconnect (the person then
        leaves like after any disconnect, once the presence grace period is over)."""
        session = self._sessions.get(sid)
        if session is None:
            return
        deadline = self._deadline(session.identity)
        if deadline > time.time():  # refreshed meanwhile, or a clock step
            self._expiry.schedule(sid, deadline)
            return
        project_end = self._guest_project_end(session.identity)
        if project_end is not None and project_end <= time.time():
            error = DomainError(ErrorCode.INVITATION_EXPIRED, "the project has ended")
        else:
            error = DomainError(ErrorCode.TOKEN_EXPIRED, "not refreshed in time")
        metrics.ERRORS.labels(error.code.value).inc()
        log.info("session_expired", sid=sid, person=session.actor.person_id, municipality=session.actor.municipality_id)
        try:
            for floor_id in list(session.watching):
                await self._transport.unwatch(sid, floor_id)
            session.watching.clear()
            await self._sio.emit("session.ended", {"error": error.to_wire(session.lang)}, to=sid)
        finally:
            await self._sio.disconnect(sid)  # whatever failed above, the session ends

    async def close(self) -> None:
        """Stopping: no session expiry fires any more."""
        await self._expiry.close()

    async def drain(self) -> int:
        """Shutting down: ask every session to reconnect (to another node) and close
        it. Their users linger for the grace period, like a page reload, so a
        reconnect elsewhere emits nothing to others."""
        sids = list(self._sessions)
        for sid in sids:
            await self._sio.emit("session.reconnect", {"reason": "shutdown"}, to=sid)
        for sid in sids:
            await self._sio.disconnect(sid)
        return len(sids)

    # ------------------------------------------------------------- cluster
    async def notify_degraded(self, degraded: bool) -> None:
        """Tell every session here that the shared store is away (or back). While
        degraded, new connections and requests that need the store are refused
        ``unavailable`` at once: a fenced node's store does not hold its sessions."""
        if degraded == self._degraded:
            return
        self._degraded = degraded
        await self._sio.emit("session.degraded", {"degraded": degraded})

    def live_sessions(self) -> list[tuple[str, Actor]]:
        """(sid, actor) of every session here, for registering them again."""
        return [(sid, session.actor) for sid, session in self._sessions.items()]

    async def reregister_sessions(self, registered: dict[str, PersonId]) -> None:
        """After an outage: ``registered`` (sid -> person) is what the store still has
        for this node. Sessions that ended meanwhile are removed (with the usual
        grace period); sessions that began meanwhile are registered."""
        for sid in set(self._sessions) - set(registered):
            await self._presence.connect(sid, self._sessions[sid].actor)
        for sid in set(registered) - set(self._sessions):
            await self._presence.disconnect(sid, registered[sid])

    # --------------------------------------------------------- presence hooks
    async def floor_removed(self, floor_id: str) -> None:
        """The floor is gone (deleted here or on another node): its watchers here
        stop watching and are told why (``floor.revoked``, reason ``deleted``)."""
        for session in list(self._sessions.values()):
            if floor_id in session.watching:
                session.watching.discard(floor_id)
                await self._tell_revoked(session.sid, floor_id, "deleted")

    # ---------------------------------------------------------- campus listener
    async def campus_changed(self, change: CampusChange) -> None:
        """Who may see a floor changed (here or on another node): a cooperation's
        members, or a project's. Every session here loses the floors it can no longer
        see; a project's members hear ``project.updated`` (a new member learns of the
        project this way)."""
        if change.kind == "cooperation_upserted" and change.cooperation is not None:
            floors = self._campus.floors_owned_by(OwnerKind.COOPERATION, change.cooperation.id)
            await self.revoke_unseen_floors("membership", [f.id for f in floors])
        elif change.kind == "project_upserted" and change.project is not None:
            project = change.project
            wire: dict[str, Any] | None = None
            for sid, session in list(self._sessions.items()):
                if access.is_project_member(session.actor, project):
                    wire = wire or {"project": self._campus.project_dict(project)}
                    await self._sio.emit("project.updated", wire, to=sid)
            if change.floor_id:
                await self.revoke_unseen_floors("membership", [change.floor_id])
        if change.kind == "project_upserted" and change.project is not None:
            # Its end date may have moved: its invited guests' sessions end with it.
            for sid, session in self._sessions.items():
                if session.identity.invitation_id is not None and session.actor.project == change.project.id:
                    self._expiry.schedule(sid, self._deadline(session.identity))
        if change.kind == "project_deleted" and change.project is not None:
            # Its invited guests have nothing left to see: their sessions end.
            await self.end_guests(invitation_id=None, project_id=change.project.id, detail="project deleted")

    async def revoke_unseen_floors(self, reason: str, floor_ids: Sequence[str]) -> int:
        """End every watch of ``floor_ids`` whose session may no longer see the floor,
        telling the session ``floor.revoked {floor_id, reason}`` (docs/protocol.md §4),
        and take the people of this node's sessions off those floors. The visibility
        rule is the campus's, applied here for every session of this node (each node
        does it for its own). Costs one store read per floor. Returns how many
        watches ended."""
        ended = 0
        for session in list(self._sessions.values()):
            for floor_id in floor_ids:
                if floor_id not in session.watching or self._campus.can_see_floor(session.actor, floor_id):
                    continue
                session.watching.discard(floor_id)
                await self._transport.unwatch(session.sid, floor_id)
                await self._tell_revoked(session.sid, floor_id, reason)
                ended += 1
        here = {session.actor.person_id: session.actor for session in self._sessions.values()}
        left = 0
        for floor_id in floor_ids:
            try:
                _, members = await self._presence.store.snapshot(floor_id)
                for member in members:
                    actor = here.get(PersonId(member["person"]))
                    if actor is not None and not self._campus.can_see_floor(actor, floor_id):
                        # Walked off, and told why (presence.location with the reason).
                        left += await self._presence.remove_from_floor(actor, floor_id, reason)
            except StoreUnavailable:
                log.warning("revoke_leave_unavailable", floor=floor_id)
        if ended or left:
            log.info("floors_revoked", watches=ended, people_left=left, reason=reason)
        return ended

    async def _tell_revoked(self, sid: str, floor_id: str, reason: str) -> None:
        metrics.FLOORS_REVOKED.labels(reason).inc()
        await self._sio.emit("floor.revoked", {"floor_id": floor_id, "reason": reason}, to=sid)

    # ------------------------------------------------------------ invitations
    def attach_invitations(self, service: InvitationService) -> None:
        """Invitation links (docs/projects.md): their events, and this gateway as the
        holder of guest sessions (the service ends them). Guest tokens of revoked
        invitations are refused by the verifier (``TokenVerifier.set_guest_check``)."""
        self._invitations = service
        service.add_listener(self)
        added: dict[str, tuple[type[BaseModel], Handler]] = {
            "invitation.create": (invitations.InvitationCreateMsg, self._invitation_create),
            "invitation.list": (invitations.InvitationListMsg, self._invitation_list),
            "invitation.revoke": (invitations.InvitationRevokeMsg, self._invitation_revoke),
        }
        self._table.update(added)
        for event in added:
            self._sio.on(event, self._bind(event))

    def _invitation_service(self) -> InvitationService:
        if self._invitations is None:
            raise DomainError(ErrorCode.UNAVAILABLE, "invitations are not set up")
        return self._invitations

    async def _invitation_create(self, s: Session, msg: invitations.InvitationCreateMsg) -> dict[str, Any]:
        base = self._settings.http.public_url or ""
        return await invitations.create_invitation(self._invitation_service(), s.actor, msg.project_id, msg, base=base)

    async def _invitation_list(self, s: Session, msg: invitations.InvitationListMsg) -> dict[str, Any]:
        return await invitations.list_invitations(self._invitation_service(), s.actor, msg.project_id)

    async def _invitation_revoke(self, s: Session, msg: invitations.InvitationRevokeMsg) -> dict[str, Any]:
        return await invitations.revoke_invitation(
            self._invitation_service(), s.actor, msg.project_id, msg.invitation_id
        )

    def live_invitations(self) -> set[str]:
        return {s.identity.invitation_id for s in self._sessions.values() if s.identity.invitation_id is not None}

    async def end_guests(self, *, invitation_id: str | None, project_id: str | None, detail: str) -> int:
        """End the local guest sessions of an invitation (or of every invitation of a
        project): no more floor updates, ``session.ended`` with ``invitation_revoked``,
        then the disconnect — like a token that ran out (:meth:`_expire`)."""
        if invitation_id is None and project_id is None:
            return 0  # never "every guest": a caller must say whose
        ended = 0
        for sid, session in list(self._sessions.items()):
            inv = session.identity.invitation_id
            if inv is None:
                continue
            if invitation_id is not None and inv != invitation_id:
                continue
            if project_id is not None and session.actor.project != project_id:
                continue
            ended += 1
            error = DomainError(ErrorCode.INVITATION_REVOKED, detail)
            metrics.ERRORS.labels(error.code.value).inc()
            log.info("guest_session_ended", sid=sid, person=session.actor.person_id, invitation=inv, detail=detail)
            try:
                for floor_id in list(session.watching):
                    await self._transport.unwatch(sid, floor_id)
                session.watching.clear()
                await self._sio.emit("session.ended", {"error": error.to_wire(session.lang)}, to=sid)
                # Off the floor at once: a revoked guest cannot come back, so the grace
                # period that spares a reload its leave/join would only keep a ghost.
                await self._presence.leave_floor(session.actor)
            except StoreUnavailable:
                log.warning("guest_leave_unavailable", sid=sid)
            finally:
                await self._sio.disconnect(sid)
        return ended


def _failure(exc: DomainError, lang: str) -> dict[str, Any]:
    return {"ok": False, "error": exc.to_wire(lang)}


def _embedder(auth: Any) -> str | None:
    """The origin of the page that embeds the client, if the client names one (the
    iframe page names its parent's). It can only narrow who may connect."""
    value = auth.get("embedder") if isinstance(auth, dict) else None
    return value[:256] if isinstance(value, str) and value else None


def _language(auth: Any, environ: dict[str, Any]) -> str:
    """German or English: the client's explicit choice, else its Accept-Language."""
    if isinstance(auth, dict) and auth.get("lang") in ("de", "en"):
        return str(auth["lang"])
    accept = str(environ.get("HTTP_ACCEPT_LANGUAGE", ""))
    return "de" if accept.lower().startswith("de") else "en"
