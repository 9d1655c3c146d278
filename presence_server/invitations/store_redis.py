"""Invitations in Redis: the :class:`~presence_server.invitations.store.InvitationStore`
shared by every node of a cluster.

Key layout (``P`` is the prefix, ``"vo:"`` by default); every key carries the
hash tag ``{inv}``, so each script touches one slot (Redis Cluster rule)::

    P{inv}:i:<id>         HASH    the record's fields (Invitation.to_record, as text)
    P{inv}:c:<code hash>  STRING  the invitation id
    P{inv}:p:<project>    ZSET    invitation id -> created_at

Every key expires ``keep_seconds`` (the retention) after the invitation does,
so Redis forgets records by itself; the project index may outlive a record by
a little and readers skip ids whose record is gone.

``add`` and ``revoke`` are scripts. ``redeem`` reads the code's id, then runs
one script on the record that checks code, revocation, expiry and count and
increments ``uses`` in the same step: two nodes redeeming the last use at once
run the script one after the other, and the second sees the count full.
"""

from __future__ import annotations

from typing import Any, Final

from presence_server.invitations.store import Invitation
from rooms.errors import DomainError, ErrorCode
from rooms.redis_link import RedisLink, ScriptedRedis, as_text

__all__ = ["RedisInvitationStore"]

# KEYS: record, code, project index. ARGV: id, code hash, created_at, expire-at (unix s), field, value, ...
_ADD: Final = """
if redis.call('EXISTS', KEYS[1]) == 1 or redis.call('EXISTS', KEYS[2]) == 1 then return 0 end
for i = 5, #ARGV, 2 do redis.call('HSET', KEYS[1], ARGV[i], ARGV[i + 1]) end
redis.call('SET', KEYS[2], ARGV[1])
redis.call('ZADD', KEYS[3], ARGV[3], ARGV[1])
redis.call('EXPIREAT', KEYS[1], ARGV[4])
redis.call('EXPIREAT', KEYS[2], ARGV[4])
if redis.call('TTL', KEYS[3]) == -1 then
  redis.call('EXPIREAT', KEYS[3], ARGV[4])
else
  redis.call('EXPIREAT', KEYS[3], ARGV[4], 'GT')
end
return 1
"""

# KEYS: record. ARGV: code hash, now. The check and the count are one step.
_REDEEM: Final = """
local f = redis.call('HMGET', KEYS[1], 'code_hash', 'revoked', 'expires_at', 'uses', 'max_uses')
if not f[1] or f[1] ~= ARGV[1] then return {'not_found'} end
if f[2] == '1' then return {'invitation_revoked'} end
if tonumber(f[3]) <= tonumber(ARGV[2]) then return {'invitation_expired'} end
if tonumber(f[4]) >= tonumber(f[5]) then return {'invitation_used_up'} end
redis.call('HINCRBY', KEYS[1], 'uses', 1)
local out = redis.call('HGETALL', KEYS[1])
table.insert(out, 1, 'ok')
return out
"""

# KEYS: record.
_REVOKE: Final = """
if redis.call('EXISTS', KEYS[1]) == 0 then return {} end
redis.call('HSET', KEYS[1], 'revoked', '1')
return redis.call('HGETALL', KEYS[1])
"""


class RedisInvitationStore(ScriptedRedis):
    """:class:`~presence_server.invitations.store.InvitationStore` in Redis, for cluster
    mode (layout and scripts: the module docstring). An outage raises
    :class:`~rooms.errors.StoreUnavailable`."""

    SCRIPTS = {"add": _ADD, "redeem": _REDEEM, "revoke": _REVOKE}

    def __init__(self, redis: RedisLink | str, *, prefix: str, keep_seconds: float = 30 * 86400) -> None:
        super().__init__(redis, prefix=prefix)
        self._keep = keep_seconds

    def _record(self, invitation_id: str) -> str:
        return f"{self.prefix}{{inv}}:i:{invitation_id}"

    def _code(self, code_hash: str) -> str:
        return f"{self.prefix}{{inv}}:c:{code_hash}"

    def _project(self, project_id: str) -> str:
        return f"{self.prefix}{{inv}}:p:{project_id}"

    async def add(self, invitation: Invitation) -> None:
        fields: list[str] = []
        for name, value in invitation.to_record().items():
            fields += [name, _text(value)]
        keys = [self._record(invitation.id), self._code(invitation.code_hash), self._project(invitation.project_id)]
        expire_at = int(invitation.expires_at + self._keep) + 1
        args = [invitation.id, invitation.code_hash, repr(invitation.created_at), str(expire_at), *fields]
        if not await self._run("add", keys, args):
            raise ValueError("invitation id or code already exists")

    async def get(self, invitation_id: str) -> Invitation | None:
        return _from_hash(await self._redis().hgetall(self._record(invitation_id)))

    async def peek(self, code_hash: str) -> Invitation | None:
        invitation_id = await self._redis().get(self._code(code_hash))
        return None if invitation_id is None else await self.get(as_text(invitation_id))

    async def for_project(self, project_id: str) -> list[Invitation]:
        ids = [as_text(i) for i in await self._redis().zrange(self._project(project_id), 0, -1)]
        if not ids:
            return []
        async with self._redis().pipeline(transaction=False) as pipe:
            for invitation_id in ids:
                pipe.hgetall(self._record(invitation_id))
            answers = await pipe.execute()
        found = [inv for inv in (_from_hash(a) for a in answers) if inv is not None]
        return sorted(found, key=lambda i: (i.created_at, i.id))

    async def redeem(self, code_hash: str, *, now: float) -> Invitation:
        invitation_id = await self._redis().get(self._code(code_hash))
        if invitation_id is None:
            raise DomainError(ErrorCode.NOT_FOUND, "invitation")
        reply = await self._run("redeem", [self._record(as_text(invitation_id))], [code_hash, repr(now)])
        outcome = as_text(reply[0])
        if outcome != "ok":
            raise DomainError(ErrorCode(outcome), "invitation" if outcome == "not_found" else None)
        invitation = _from_pairs(reply[1:])
        assert invitation is not None
        return invitation

    async def revoke(self, invitation_id: str) -> Invitation | None:
        return _from_pairs(await self._run("revoke", [self._record(invitation_id)], []))

    async def purge(self, *, expired_before: float) -> int:
        return 0  # every key carries its own expiry (keep_seconds after the invitation's)


def _text(value: Any) -> str:
    if isinstance(value, bool):
        return "1" if value else "0"
    if isinstance(value, float):
        return repr(value)
    return str(value)


def _from_pairs(flat: list[Any]) -> Invitation | None:
    if not flat:
        return None
    return _from_hash(dict(zip(flat[0::2], flat[1::2])))


def _from_hash(raw: dict[Any, Any]) -> Invitation | None:
    if not raw:
        return None
    return Invitation.from_record({as_text(k): as_text(v) for k, v in raw.items()})
