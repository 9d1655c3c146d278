"""Invitations in this process: the :class:`~presence_server.invitations.store.InvitationStore`
of a single node with ``storage.backend = "memory"``.

Single node only: another node cannot see it, and it is empty after a restart
(every link then answers ``not_found``). Each method is one synchronous step
on the event loop, so a redemption's check and count cannot be separated.
"""

from __future__ import annotations

from dataclasses import replace

from presence_server.invitations.store import Invitation, check_redeemable, counted

__all__ = ["MemoryInvitationStore"]


class MemoryInvitationStore:
    """The invitation records in a dict. Single node only; forgotten on restart."""

    def __init__(self) -> None:
        self._by_id: dict[str, Invitation] = {}
        self._by_code: dict[str, str] = {}

    async def open(self) -> None:
        return None

    async def close(self) -> None:
        return None

    async def add(self, invitation: Invitation) -> None:
        if invitation.id in self._by_id or invitation.code_hash in self._by_code:
            raise ValueError("invitation id or code already exists")
        self._by_id[invitation.id] = invitation
        self._by_code[invitation.code_hash] = invitation.id

    async def get(self, invitation_id: str) -> Invitation | None:
        return self._by_id.get(invitation_id)

    async def for_project(self, project_id: str) -> list[Invitation]:
        found = [i for i in self._by_id.values() if i.project_id == project_id]
        return sorted(found, key=lambda i: (i.created_at, i.id))

    async def peek(self, code_hash: str) -> Invitation | None:
        invitation_id = self._by_code.get(code_hash)
        return None if invitation_id is None else self._by_id.get(invitation_id)

    async def redeem(self, code_hash: str, *, now: float) -> Invitation:
        invitation = counted(check_redeemable(await self.peek(code_hash), now))
        self._by_id[invitation.id] = invitation
        return invitation

    async def revoke(self, invitation_id: str) -> Invitation | None:
        invitation = self._by_id.get(invitation_id)
        if invitation is None:
            return None
        invitation = replace(invitation, revoked=True)
        self._by_id[invitation_id] = invitation
        return invitation

    async def purge(self, *, expired_before: float) -> int:
        gone = [i for i in self._by_id.values() if i.expires_at < expired_before]
        for invitation in gone:
            del self._by_id[invitation.id]
            self._by_code.pop(invitation.code_hash, None)
        return len(gone)
