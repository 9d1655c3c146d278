"""One error shape for the whole system: a stable machine code and a human message.

Domain code raises :class:`DomainError`; the gateway and the REST API turn it into
``{"ok": false, "error": {"code": ..., "message": ...}}``. Codes are part of the
protocol (``docs/protocol.md``); messages are for people and exist in English and
German (see :data:`MESSAGES`).

A store that cannot reach its backend raises :class:`StoreUnavailable`, whatever
the backend; the edges answer it with ``unavailable``.
"""

from __future__ import annotations

import enum
from typing import Any, Final

__all__ = ["ErrorCode", "DomainError", "StoreUnavailable", "StoreForgot", "MESSAGES", "message_for"]


class ErrorCode(str, enum.Enum):
    # request shape
    INVALID_PAYLOAD = "invalid_payload"
    PAYLOAD_TOO_LARGE = "payload_too_large"
    UNKNOWN_EVENT = "unknown_event"
    RATE_LIMITED = "rate_limited"
    TOO_MANY_SESSIONS = "too_many_sessions"
    # identity
    UNAUTHENTICATED = "unauthenticated"
    TOKEN_EXPIRED = "token_expired"
    FORBIDDEN = "forbidden"
    # browser origins (docs/embedding.md §5)
    ORIGIN_NOT_ALLOWED = "origin_not_allowed"
    MUNICIPALITY_NOT_ALLOWED = "municipality_not_allowed"
    # campus
    NOT_FOUND = "not_found"
    CONFLICT = "conflict"
    # walking
    NOT_ON_FLOOR = "not_on_floor"
    KNOCK_REQUIRED = "knock_required"
    LOCKED = "locked"
    ROOM_FULL = "room_full"
    # knocking
    DOOR_OPEN = "door_open"
    ALREADY_INSIDE = "already_inside"
    ALREADY_KNOCKING = "already_knocking"
    KNOCK_COOLDOWN = "knock_cooldown"
    KNOCK_RESOLVED = "knock_resolved"
    NOBODY_TO_ANSWER = "nobody_to_answer"
    # calls
    CALL_FULL = "call_full"
    NOT_IN_CALL = "not_in_call"
    DO_NOT_DISTURB = "do_not_disturb"
    RING_RESOLVED = "ring_resolved"
    # invitations (docs/projects.md, "Invitations")
    INVITATION_EXPIRED = "invitation_expired"
    INVITATION_USED_UP = "invitation_used_up"
    INVITATION_REVOKED = "invitation_revoked"
    # server
    UNAVAILABLE = "unavailable"
    INTERNAL = "internal"


#: code -> (English, German). The message explains; the code is what clients branch on.
MESSAGES: Final[dict[ErrorCode, tuple[str, str]]] = {
    ErrorCode.INVALID_PAYLOAD: ("The request is malformed.", "Die Anfrage ist fehlerhaft."),
    ErrorCode.PAYLOAD_TOO_LARGE: ("The request is too large.", "Die Anfrage ist zu groß."),
    ErrorCode.UNKNOWN_EVENT: ("Unknown event.", "Unbekanntes Ereignis."),
    ErrorCode.RATE_LIMITED: ("Too many requests, slow down.", "Zu viele Anfragen, bitte langsamer."),
    ErrorCode.TOO_MANY_SESSIONS: (
        "Too many open sessions: close another tab or device first.",
        "Zu viele offene Sitzungen: bitte zuerst einen anderen Tab oder ein anderes Gerät schließen.",
    ),
    ErrorCode.UNAUTHENTICATED: ("A valid token is required.", "Ein gültiges Token ist erforderlich."),
    ErrorCode.TOKEN_EXPIRED: ("The token has expired.", "Das Token ist abgelaufen."),
    ErrorCode.FORBIDDEN: ("You are not allowed to do this.", "Dazu sind Sie nicht berechtigt."),
    ErrorCode.ORIGIN_NOT_ALLOWED: (
        "This website may not use the virtual office.",
        "Diese Website darf das virtuelle Büro nicht verwenden.",
    ),
    ErrorCode.MUNICIPALITY_NOT_ALLOWED: (
        "This website may not use the virtual office for your municipality.",
        "Diese Website darf das virtuelle Büro für Ihre Gemeinde nicht verwenden.",
    ),
    ErrorCode.NOT_FOUND: ("Not found.", "Nicht gefunden."),
    ErrorCode.CONFLICT: ("This conflicts with the current state.", "Das widerspricht dem aktuellen Stand."),
    ErrorCode.NOT_ON_FLOOR: ("The room is not on that floor.", "Der Raum liegt nicht auf dieser Etage."),
    ErrorCode.KNOCK_REQUIRED: ("The door is closed: knock first.", "Die Tür ist geschlossen: bitte anklopfen."),
    ErrorCode.LOCKED: ("The door is locked.", "Die Tür ist abgeschlossen."),
    ErrorCode.ROOM_FULL: ("The room is full.", "Der Raum ist voll."),
    ErrorCode.DOOR_OPEN: ("The door is open: just walk in.", "Die Tür ist offen: einfach eintreten."),
    ErrorCode.ALREADY_INSIDE: ("You are already in this room.", "Sie sind bereits in diesem Raum."),
    ErrorCode.ALREADY_KNOCKING: ("You are already knocking on a door.", "Sie klopfen bereits an einer Tür."),
    ErrorCode.KNOCK_COOLDOWN: (
        "Your knock was just declined; please wait before knocking again.",
        "Ihr Klopfen wurde gerade abgelehnt; bitte warten Sie, bevor Sie erneut klopfen.",
    ),
    ErrorCode.KNOCK_RESOLVED: ("This knock has already been answered.", "Dieses Klopfen wurde bereits beantwortet."),
    ErrorCode.NOBODY_TO_ANSWER: (
        "Nobody is there to answer the door.",
        "Niemand ist da, um die Tür zu öffnen.",
    ),
    ErrorCode.CALL_FULL: ("The call is full.", "Das Gespräch ist voll besetzt."),
    ErrorCode.NOT_IN_CALL: (
        "Signals go only to members of your own call.",
        "Signale gehen nur an Teilnehmende Ihres eigenen Gesprächs.",
    ),
    ErrorCode.DO_NOT_DISTURB: (
        "Do not disturb: you may leave a note instead.",
        "Bitte nicht stören: Sie können stattdessen eine Notiz hinterlassen.",
    ),
    ErrorCode.RING_RESOLVED: ("This call has already been answered or ended.", "Dieser Anruf ist bereits beantwortet oder beendet."),
    ErrorCode.INVITATION_EXPIRED: ("This invitation has expired.", "Diese Einladung ist abgelaufen."),
    ErrorCode.INVITATION_USED_UP: (
        "This invitation has already been used as often as allowed.",
        "Diese Einladung wurde bereits so oft wie erlaubt verwendet.",
    ),
    ErrorCode.INVITATION_REVOKED: ("This invitation has been withdrawn.", "Diese Einladung wurde zurückgezogen."),
    ErrorCode.UNAVAILABLE: ("The service is temporarily unavailable.", "Der Dienst ist vorübergehend nicht verfügbar."),
    ErrorCode.INTERNAL: ("Internal error.", "Interner Fehler."),
}


def message_for(code: ErrorCode, lang: str = "en") -> str:
    en, de = MESSAGES[code]
    return de if lang == "de" else en


class DomainError(Exception):
    """A refused request. ``detail`` adds specifics (which field, how long to wait)."""

    def __init__(self, code: ErrorCode, detail: str | None = None, **extra: Any) -> None:
        super().__init__(f"{code.value}: {detail or MESSAGES[code][0]}")
        self.code = code
        self.detail = detail
        self.extra = extra

    def to_wire(self, lang: str = "en") -> dict[str, Any]:
        message = message_for(self.code, lang)
        if self.detail:
            message = f"{message} ({self.detail})"
        err: dict[str, Any] = {"code": self.code.value, "message": message}
        if self.extra:
            err.update(self.extra)
        return err


class StoreUnavailable(Exception):
    """A store cannot reach its backend right now (Redis away, a failover under way).

    Every store raises this, and only this, for an outage; the Redis stores
    translate redis-py's connection errors into it in one place
    (:mod:`rooms.redis_link`), so nothing above the stores needs to know which
    backend it talks to. The gateway and the REST API answer ``unavailable``
    (retry later); background loops log it and try again on their next round.

    Deliberately not a :class:`DomainError`: nothing was refused, the same call
    may succeed in a moment, and code that reads a DomainError as "another
    answer won" (knock and ring races) must not swallow an outage as one.
    """


class StoreForgot(StoreUnavailable):
    """Redis no longer holds a session this node holds: the node was declared dead
    (fenced) or Redis lost its data. Answered ``unavailable`` like an outage; the
    node registers the session again as soon as it notices (within a heartbeat)."""
