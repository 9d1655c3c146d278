"""The invitation store: one record per invitation link, and its use count.

An :class:`Invitation` is what a coordinator created: the project it grants,
the display name its guests get, how many times it may be used, until when,
whether it was revoked — and a hash of its secret code (SHA-256; the code
itself is shown once, to its creator, and never stored). It holds nothing
about the guests who used it but *how many* did.

Contract (every implementation; ``tests/test_invitation_store_contract.py``
runs it against each):

* :meth:`InvitationStore.add` stores a new record; ids and code hashes are unique.
* :meth:`InvitationStore.redeem` is **atomic**: it finds the record by code
  hash and, in one step, refuses or counts one use. However many nodes redeem
  the last use at once, exactly one wins. Refusals are :class:`DomainError`:
  ``NOT_FOUND`` (no such code), ``INVITATION_REVOKED``,
  ``INVITATION_EXPIRED`` (``expires_at <= now``), ``INVITATION_USED_UP``
  (``uses == max_uses``), checked in that order. The winner gets the record
  with its new count (``uses`` is this redemption's number, 1-based).
* :meth:`InvitationStore.revoke` is idempotent and returns the record
  (revoked), or None if there is none.
* :meth:`InvitationStore.purge` deletes records that expired before a time
  (the retention); stores may also expire them by themselves (Redis TTL).
* An outage raises :class:`~rooms.errors.StoreUnavailable`.

Implementations: ``store_memory`` (one node, lost on restart), ``store_sqlite``
(one node, the default: ``storage.backend = "sqlite"``) and ``store_redis``
(cluster mode).
"""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import asdict, dataclass, replace
from typing import Any, Final, Protocol

from rooms.errors import DomainError, ErrorCode
from rooms.person import PersonId

__all__ = [
    "Invitation",
    "InvitationStore",
    "CODE_BYTES",
    "new_code",
    "hash_code",
    "new_invitation_id",
    "check_redeemable",
    "counted",
]

#: Random bytes in a code: 192 bits, URL-safe base64 (32 characters).
CODE_BYTES: Final = 24


@dataclass(frozen=True, slots=True)
class Invitation:
    id: str
    project_id: str
    #: The host: the inviting coordinator's municipality; guests are (host, gast-<id>-<n>).
    municipality: str
    display_name: str
    max_uses: int
    uses: int
    expires_at: float
    revoked: bool
    created_by: PersonId
    created_at: float
    code_hash: str

    def to_record(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_record(cls, d: dict[str, Any]) -> Invitation:
        return cls(
            id=str(d["id"]),
            project_id=str(d["project_id"]),
            municipality=str(d["municipality"]),
            display_name=str(d["display_name"]),
            max_uses=int(d["max_uses"]),
            uses=int(d["uses"]),
            expires_at=float(d["expires_at"]),
            revoked=bool(int(d["revoked"])) if isinstance(d["revoked"], (int, str, bytes)) else bool(d["revoked"]),
            created_by=PersonId(str(d["created_by"])),
            created_at=float(d["created_at"]),
            code_hash=str(d["code_hash"]),
        )

    def public_dict(self) -> dict[str, Any]:
        """What coordinators see: everything but the code's hash."""
        d = self.to_record()
        del d["code_hash"]
        return d


class InvitationStore(Protocol):
    async def open(self) -> None:
        """Connect / prepare. Idempotent."""

    async def close(self) -> None:
        """Release resources. Idempotent."""

    async def add(self, invitation: Invitation) -> None:
        """Store a new invitation (``uses`` 0, not revoked)."""

    async def get(self, invitation_id: str) -> Invitation | None:
        """The record, or None (never created, or purged)."""

    async def for_project(self, project_id: str) -> list[Invitation]:
        """Every record of the project, oldest first."""

    async def redeem(self, code_hash: str, *, now: float) -> Invitation:
        """Count one use atomically, or refuse (see the module docstring)."""

    async def peek(self, code_hash: str) -> Invitation | None:
        """The record with this code hash, without counting a use."""

    async def revoke(self, invitation_id: str) -> Invitation | None:
        """Mark revoked (idempotent); the record, or None if there is none."""

    async def purge(self, *, expired_before: float) -> int:
        """Delete records whose ``expires_at`` is before ``expired_before``; how many."""


def new_code() -> str:
    """A fresh secret code (see :data:`CODE_BYTES`)."""
    return secrets.token_urlsafe(CODE_BYTES)


def hash_code(code: str) -> str:
    """What is stored instead of the code. A plain SHA-256 suffices: the code is
    random with 192 bits, so there is nothing to guess from its hash."""
    return hashlib.sha256(code.encode()).hexdigest()


def new_invitation_id() -> str:
    return "inv" + secrets.token_hex(6)


def check_redeemable(invitation: Invitation | None, now: float) -> Invitation:
    """Raise the refusal for ``invitation`` at ``now``, in the contract's order."""
    if invitation is None:
        raise DomainError(ErrorCode.NOT_FOUND, "invitation")
    if invitation.revoked:
        raise DomainError(ErrorCode.INVITATION_REVOKED)
    if invitation.expires_at <= now:
        raise DomainError(ErrorCode.INVITATION_EXPIRED)
    if invitation.uses >= invitation.max_uses:
        raise DomainError(ErrorCode.INVITATION_USED_UP)
    return invitation


def counted(invitation: Invitation) -> Invitation:
    """The record after one more use."""
    return replace(invitation, uses=invitation.uses + 1)
