"""ICE servers for the browser, with time-limited TURN credentials.

TURN credentials follow the coturn REST API convention (``use-auth-secret`` with
``static-auth-secret``), which the TURN server verifies with no call back to us:

* ``username = f"{expiry}:{person}"``, ``expiry`` a Unix timestamp in whole seconds;
* ``password = base64(HMAC-SHA1(secret, username))``.

``now`` must be wall-clock Unix time (``time.time()``), not a monotonic clock: the
TURN server compares ``expiry`` with its own clock. Stdlib only; pure.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Final

from rooms.person import PersonId

__all__ = ["TurnCredential", "DEFAULT_TTL", "turn_credential", "turn_password", "ice_servers"]

#: Credential lifetime. Long enough to cover a whole call (an ICE restart re-uses the
#: credential), short enough that a leaked one is soon useless.
DEFAULT_TTL: Final = 3600.0


@dataclass(frozen=True, slots=True)
class TurnCredential:
    username: str
    password: str
    expires_at: int  # Unix seconds, the same number as the username's prefix


def turn_password(secret: str | bytes, username: str) -> str:
    """``base64(HMAC-SHA1(secret, username))``, as coturn computes it."""
    key = secret.encode() if isinstance(secret, str) else secret
    digest = hmac.new(key, username.encode(), hashlib.sha1).digest()
    return base64.b64encode(digest).decode("ascii")


def turn_credential(secret: str | bytes, person: PersonId, now: float, ttl: float = DEFAULT_TTL) -> TurnCredential:
    """A credential valid until ``int(now + ttl)``. Raises ``ValueError`` on an empty
    secret or user id, or a non-positive ``ttl``."""
    if not secret:
        raise ValueError("a TURN secret is required")
    if not person:
        raise ValueError("a user id is required")
    if ttl <= 0:
        raise ValueError("ttl must be positive")
    expiry = int(now + ttl)
    username = f"{expiry}:{person}"
    return TurnCredential(username, turn_password(secret, username), expiry)


def ice_servers(
    stun_urls: Sequence[str],
    turn_urls: Sequence[str],
    secret: str | bytes | None,
    person: PersonId,
    now: float,
    ttl: float = DEFAULT_TTL,
) -> list[dict[str, Any]]:
    """The ``iceServers`` list for ``RTCPeerConnection``, in the browser's
    ``RTCIceServer`` shape: ``{"urls": [...]}`` for STUN and
    ``{"urls": [...], "username": ..., "credential": ...}`` for TURN. An entry is left
    out when it has no URLs; the TURN entry also when there is no secret."""
    servers: list[dict[str, Any]] = []
    if stun_urls:
        servers.append({"urls": list(stun_urls)})
    if turn_urls and secret:
        cred = turn_credential(secret, person, now, ttl)
        servers.append({"urls": list(turn_urls), "username": cred.username, "credential": cred.password})
    return servers
