"""The Lua scripts of the Redis knock store, one string each.

Kept apart from :mod:`presence_server.knocks.store_redis` (which says which
operation runs which scripts, and what each guarantees) so each file reads in
one go. Every script touches the keys of one hash tag only: floor scripts
``P{f:<floor>}:knocks, claimed, resolved``, user scripts ``P{u:<user>}:knock,
cooldowns``.
"""

from __future__ import annotations

from typing import Final

__all__ = ["SCRIPTS"]

# KEYS: 1 knocks, 2 claimed, 3 resolved. ARGV[1]: the claim lease (ms).
# Numbers go through int(): Lua's tostring() turns 1.7e12 into "1.7e+12".
_FLOOR_LIB: Final = """
local function int(n) return string.format('%d', n) end
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local lease = tonumber(ARGV[1])
-- 'pending', 'claimed' (a claim within its lease), 'resolved' or 'unknown'; and the record
local function state(id)
    local rec = redis.call('HGET', KEYS[1], id)
    if not rec then
        if redis.call('ZSCORE', KEYS[3], id) then return 'resolved', '' end
        return 'unknown', ''
    end
    local at = redis.call('ZSCORE', KEYS[2], id)
    if at and now - tonumber(at) < lease then return 'claimed', rec end
    return 'pending', rec
end
"""

# ARGV: 2.. knock ids. Returns {state, record} per id, flat.
_F_PEEK: Final = """
local out = {}
for i = 2, #ARGV do
    local s, rec = state(ARGV[i])
    out[#out + 1] = s
    out[#out + 1] = rec
end
return out
"""

# ARGV: 2 knock id
_F_CLAIM: Final = """
local s, rec = state(ARGV[2])
if s ~= 'pending' then return {s} end
redis.call('ZADD', KEYS[2], int(now), ARGV[2])
return {'ok', rec}
"""

# ARGV: 2 knock id, 3 '1' = the caller holds the claim, 4 keep resolved ids (ms), 5 how many
_F_RESOLVE: Final = """
local s, rec = state(ARGV[2])
if s == 'claimed' and ARGV[3] == '1' then s = 'pending' end
if s ~= 'pending' then return {s} end
redis.call('HDEL', KEYS[1], ARGV[2])
redis.call('ZREM', KEYS[2], ARGV[2])
redis.call('ZADD', KEYS[3], int(now), ARGV[2])
redis.call('ZREMRANGEBYSCORE', KEYS[3], '-inf', int(now - tonumber(ARGV[4])))
redis.call('ZREMRANGEBYRANK', KEYS[3], 0, int(-(tonumber(ARGV[5]) + 1)))
redis.call('PEXPIRE', KEYS[3], ARGV[4])
return {'ok', rec}
"""

# KEYS: 1 knock (the pointer), 2 cooldowns
_USER_LIB: Final = """
local function forget_elapsed(now)
    local all = redis.call('HGETALL', KEYS[2])
    for i = 1, #all, 2 do
        if tonumber(all[i + 1]) <= now then redis.call('HDEL', KEYS[2], all[i]) end
    end
end
"""

# ARGV: 1 knock id, 2 room, 3 now, 4 pointer TTL (ms)
_U_RESERVE: Final = """
local mine = redis.call('GET', KEYS[1])
if mine then return {'knocking', mine} end
forget_elapsed(tonumber(ARGV[3]))
local until_ = redis.call('HGET', KEYS[2], ARGV[2])
if until_ then return {'cooldown', until_} end
redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[4])
return {'ok'}
"""

# ARGV: 1 knock id, 2 room, 3 cool-down until ('' = none), 4 now, 5 cool-down (ms)
_U_SETTLE: Final = """
if redis.call('GET', KEYS[1]) == ARGV[1] then redis.call('DEL', KEYS[1]) end
forget_elapsed(tonumber(ARGV[4]))
if ARGV[3] ~= '' then
    redis.call('HSET', KEYS[2], ARGV[2], ARGV[3])
    redis.call('PEXPIRE', KEYS[2], ARGV[5])  -- every entry ends before the newest one
end
return 1
"""

SCRIPTS: Final[dict[str, str]] = {
    "f_peek": _FLOOR_LIB + _F_PEEK,
    "f_claim": _FLOOR_LIB + _F_CLAIM,
    "f_resolve": _FLOOR_LIB + _F_RESOLVE,
    "u_reserve": _USER_LIB + _U_RESERVE,
    "u_settle": _USER_LIB + _U_SETTLE,
}
