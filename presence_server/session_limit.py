"""How many Socket.IO sessions one person may hold open on this node at once.

Every session costs the server a connection, a token bucket, floor
subscriptions and a share of every broadcast; one person's script or a tab
left reconnecting in a loop must not be able to take hundreds. The budget is
per *person*, and a person is qualified by their municipality: each town runs
its own identity provider, so ``m.mueller`` of Altbach and ``m.mueller`` of
Bergheim are two people with two budgets (never key by the bare user id).

The count is this node's: in cluster mode a person may hold up to the limit on
each node (documented in docs/protocol.md §11).
"""

from __future__ import annotations

from collections import Counter
from typing import Final

from rooms.person import PersonId

__all__ = ["SessionLimit"]


class SessionLimit:
    """Open sessions per person; :meth:`acquire` and :meth:`release` never await,
    so a check and its count cannot be separated by another connect."""

    def __init__(self, max_sessions: int) -> None:
        if max_sessions < 1:
            raise ValueError("max_sessions must be at least 1")
        self.max_sessions: Final = max_sessions
        self._open: Counter[PersonId] = Counter()

    def acquire(self, person: PersonId) -> int:
        """Count one more session for ``person`` and return how many they hold now;
        0 (and nothing counted) at the limit."""
        if self._open[person] >= self.max_sessions:
            return 0
        self._open[person] += 1
        return self._open[person]

    def release(self, person: PersonId) -> int:
        """A session of ``person`` ended (or was refused after :meth:`acquire`);
        returns how many they still hold."""
        left = self._open[person] - 1
        if left > 0:
            self._open[person] = left
        else:
            del self._open[person]  # no entry kept for people who are gone
        return max(left, 0)

    def open_sessions(self, person: PersonId) -> int:
        return self._open.get(person, 0)
