"""The Lua scripts of the Redis presence store, one string each.

Kept apart from :mod:`presence_server.presence.store_redis` (which says which
operation runs which scripts, and why they converge) so each file reads in one
go. Every script touches the keys of one hash tag only.
"""

from __future__ import annotations

from typing import Final

__all__ = ["SCRIPTS", "TOMBSTONE_MS"]

#: How long a floor remembers a removed member's version.
TOMBSTONE_MS: Final = 60_000

# ------------------------------------------------------------------- floor Lua
# KEYS: 1 seq, 2 members, 3 occupancy, 4 gone, 5 gone_at
# ARGV: 1 channel, 2 node id, 3 floor id, then each script's own.
# Numbers go through int(): Lua's tostring() turns 1.7e15 into "1.7e+15".
_FLOOR_LIB: Final = """
local TOMB_MS = @TOMB_MS@
local out = {}
local first, last = nil, nil  -- the seq range this script stamped (consecutive: one INCR each)
local function int(n) return string.format('%d', n) end
local function jroom(room) if room == '' then return 'null' end return cjson.encode(room) end
local function user_json(user) return ',"person":' .. cjson.encode(user) end
local function stamp(kind, body)
    local seq = redis.call('INCR', KEYS[1])
    first = first or seq
    last = seq
    out[#out + 1] = '{"seq":' .. int(seq) .. ',"type":' .. cjson.encode(kind) .. body .. '}'
end
-- m = {lv, av, room, status, text, actor, public}; public is a JSON object
local function member_json(m)
    return string.sub(m[7], 1, -2) .. ',"status":' .. cjson.encode(m[4]) .. ',"text":'
        .. cjson.encode(m[5]) .. ',"room_id":' .. jroom(m[3]) .. '}'
end
local function changes(user, old, new)
    if old[3] ~= new[3] then
        stamp('moved', user_json(user) .. ',"from":' .. jroom(old[3]) .. ',"room_id":' .. jroom(new[3]))
    end
    if old[6] ~= new[6] then
        stamp('joined', ',"member":' .. member_json(new))
    elseif old[4] ~= new[4] or old[5] ~= new[5] then
        stamp('status', user_json(user) .. ',"status":' .. cjson.encode(new[4]) .. ',"text":' .. cjson.encode(new[5]))
    end
end
local function publish()
    if #out == 0 then return '' end
    local diffs = '[' .. table.concat(out, ',') .. ']'
    redis.call('PUBLISH', ARGV[1], cmsgpack.pack({n = ARGV[2],
        b = {floor_id = ARGV[3], first = first, last = last, diffs_json = diffs}}))
    return diffs
end
local function occupy(room, delta)
    if room ~= '' and redis.call('HINCRBY', KEYS[3], room, delta) <= 0 then
        redis.call('HDEL', KEYS[3], room)
    end
end
local function now_ms()
    local t = redis.call('TIME')
    return tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
end
local function sweep()
    local old = redis.call('ZRANGEBYSCORE', KEYS[5], '-inf', int(now_ms()), 'LIMIT', 0, 100)
    if #old > 0 then
        redis.call('HDEL', KEYS[4], unpack(old))
        redis.call('ZREM', KEYS[5], unpack(old))
    end
end
local function bury(user, lv)
    if lv > tonumber(redis.call('HGET', KEYS[4], user) or '0') then
        redis.call('HSET', KEYS[4], user, int(lv))
    end
    redis.call('ZADD', KEYS[5], int(now_ms() + TOMB_MS), user)
    redis.call('PEXPIRE', KEYS[4], TOMB_MS)
    redis.call('PEXPIRE', KEYS[5], TOMB_MS)
end
local function get_member(user)
    local raw = redis.call('HGET', KEYS[2], user)
    if raw then return cmsgpack.unpack(raw) end
    return nil
end
local function save(user, m) redis.call('HSET', KEYS[2], user, cmsgpack.pack(m)) end
-- Place a user at (room) as of location version v: 'ok', 'stale' (a newer
-- location reached this floor first) or 'full'. Someone already in the room
-- is never refused: a move cut off after this step may have counted them.
local function enter(user, v, room, cap, status, text, actor, public)
    local m = get_member(user)
    local seen = m and m[1] or tonumber(redis.call('HGET', KEYS[4], user) or '0')
    if v <= seen then return 'stale' end
    if room ~= '' and cap >= 0 and (m == nil or m[3] ~= room)
            and tonumber(redis.call('HGET', KEYS[3], room) or '0') >= cap then
        return 'full'
    end
    local new = {v, v, room, status, text, actor, public}
    if m == nil then
        redis.call('HDEL', KEYS[4], user)
        redis.call('ZREM', KEYS[5], user)
        occupy(room, 1)
        save(user, new)
        stamp('joined', ',"member":' .. member_json(new))
        return 'ok'
    end
    if m[2] >= v then  -- newer attributes are already shown: keep them
        new[2], new[4], new[5], new[6], new[7] = m[2], m[4], m[5], m[6], m[7]
    end
    if m[3] ~= room then
        occupy(m[3], -1)
        occupy(room, 1)
    end
    save(user, new)
    changes(user, m, new)
    return 'ok'
end
""".replace("@TOMB_MS@", str(TOMBSTONE_MS))

# ARGV: 4 user, 5 version, 6 room ('' hallway), 7 capacity (-1: no limit),
#       8 status, 9 text, 10 actor, 11 public.  Returns {'ok'|'stale'|'full', diffs}.
_F_ENTER: Final = """
sweep()
local tag = enter(ARGV[4], tonumber(ARGV[5]), ARGV[6], tonumber(ARGV[7]), ARGV[8], ARGV[9], ARGV[10], ARGV[11])
return {tag, publish()}
"""

# ARGV: 4.. per occupant: user, version, status, text, actor, public.
# Everyone to the hallway in one step; returns each one's enter() tag.
_F_EVACUATE: Final = """
sweep()
local tags = {}
for i = 4, #ARGV, 6 do
    tags[#tags + 1] = enter(ARGV[i], tonumber(ARGV[i + 1]), '', -1, ARGV[i + 2], ARGV[i + 3], ARGV[i + 4], ARGV[i + 5])
end
return {'ok', publish(), tags}
"""

# ARGV: 4 user, 5 version, 6 status, 7 text, 8 actor, 9 public.
# Never adds or moves a member (that is f_enter's, capacity-checked).
_F_UPDATE: Final = """
local user, v = ARGV[4], tonumber(ARGV[5])
local m = get_member(user)
if m == nil then return {'absent', ''} end
if v <= m[2] then return {'stale', ''} end
local new = {m[1], v, m[3], ARGV[6], ARGV[7], ARGV[8], ARGV[9]}
save(user, new)
changes(user, m, new)
return {'ok', publish()}
"""

# ARGV: 4 user, 5 version, 6 '1' = silent (the floor was deleted: no diff).
# 'ok' and 'absent' confirm the user is off this floor up to the version.
_F_LEAVE: Final = """
sweep()
local user, v = ARGV[4], tonumber(ARGV[5])
local m = get_member(user)
if m == nil then
    bury(user, v)
    return {'absent', ''}
end
if v <= m[1] then return {'stale', ''} end
occupy(m[3], -1)
redis.call('HDEL', KEYS[2], user)
bury(user, v)
if ARGV[6] ~= '1' then stamp('left', user_json(user)) end
return {'ok', publish()}
"""

# ARGV: 4 type, 5 data as a JSON object
_F_CAMPUS: Final = """
local body = string.sub(ARGV[5], 2, -2)
if body ~= '' then body = ',' .. body end
stamp(ARGV[4], body)
return {'ok', publish()}
"""

# Empties the floor at once, keeping seq; each member's tombstone holds its lv.
_F_DROP: Final = """
local all = redis.call('HGETALL', KEYS[2])
local users = {}
for i = 1, #all, 2 do
    bury(all[i], cmsgpack.unpack(all[i + 1])[1])
    users[#users + 1] = all[i]
end
redis.call('DEL', KEYS[2], KEYS[3])
return {'ok', '', users}
"""

# KEYS: 1 seq.  ARGV: 1 the highest seq a node delivered.  Sets seq one past it
# unless it is above it already (a view at that seq then sees it is behind).
_F_RAISE_SEQ: Final = """
local seq = tonumber(redis.call('GET', KEYS[1]) or '0')
if seq <= tonumber(ARGV[1]) then
    seq = tonumber(ARGV[1]) + 1
    redis.call('SET', KEYS[1], string.format('%d', seq))
end
return seq
"""

# -------------------------------------------------------------------- user Lua
# KEYS: 1 presence, 2 sessions, 3 floors.  state() is what every script returns:
# {tag, ver, locver, floor, room, status, text, actor, public, since, sessions, floors}
_USER_LIB: Final = """
local PRIORITY = {do_not_disturb = 3, busy = 2, available = 1, away = 0}
local function int(n) return string.format('%d', n) end
local function exists() return redis.call('HEXISTS', KEYS[1], 'actor') == 1 end
local function bump()
    if redis.call('HEXISTS', KEYS[1], 'ver') == 0 then
        local t = redis.call('TIME')
        redis.call('HSET', KEYS[1], 'ver', int(tonumber(t[1]) * 1000000 + tonumber(t[2])))
    end
    return redis.call('HINCRBY', KEYS[1], 'ver', 1)
end
local function state(tag)
    local h = redis.call('HMGET', KEYS[1],
        'ver', 'locver', 'floor', 'room', 'status', 'text', 'actor', 'public', 'since')
    return {tag, tonumber(h[1] or '0'), tonumber(h[2] or '0'), h[3] or '', h[4] or '', h[5] or '', h[6] or '',
            h[7] or '', h[8] or '', h[9] or '', redis.call('HLEN', KEYS[2]), redis.call('HKEYS', KEYS[3])}
end
-- Effective status: highest priority, then the most recent setter. True if it changed.
local function recompute()
    local best
    for _, raw in ipairs(redis.call('HVALS', KEYS[2])) do
        local s = cmsgpack.unpack(raw)
        if best == nil or PRIORITY[s[2]] > PRIORITY[best[2]]
                or (PRIORITY[s[2]] == PRIORITY[best[2]] and s[4] > best[4]) then
            best = s
        end
    end
    if best == nil then return false end
    local cur = redis.call('HMGET', KEYS[1], 'status', 'text')
    if cur[1] == best[2] and cur[2] == best[3] then return false end
    redis.call('HSET', KEYS[1], 'status', best[2], 'text', best[3])
    return true
end
local function relocate(floor, room, v)
    if floor == '' then
        redis.call('HDEL', KEYS[1], 'floor', 'room')
    else
        redis.call('HSET', KEYS[1], 'floor', floor)
        if room == '' then redis.call('HDEL', KEYS[1], 'room') else redis.call('HSET', KEYS[1], 'room', room) end
    end
    redis.call('HSET', KEYS[1], 'locver', int(v))
end
-- Forget floors confirmed clean up to version v (ARGV[first..]), never the current one.
local function prune(v, first)
    local here = redis.call('HGET', KEYS[1], 'floor') or ''
    for i = first, #ARGV do
        local since = redis.call('HGET', KEYS[3], ARGV[i])
        if since and tonumber(since) <= v and ARGV[i] ~= here then redis.call('HDEL', KEYS[3], ARGV[i]) end
    end
end
"""

# ARGV: 1 sid, 2 node, 3 actor, 4 public
_U_CONNECT: Final = """
if redis.call('HEXISTS', KEYS[2], ARGV[1]) == 1 then return {'duplicate'} end
local tag = 'same'
if not exists() then
    redis.call('HSET', KEYS[1], 'actor', ARGV[3], 'public', ARGV[4], 'status', 'available', 'text', '')
elseif redis.call('HGET', KEYS[1], 'actor') ~= ARGV[3] then
    redis.call('HSET', KEYS[1], 'actor', ARGV[3], 'public', ARGV[4])
    tag = 'changed'
end
local v = bump()
local cur = redis.call('HMGET', KEYS[1], 'status', 'text')  -- a new session inherits
redis.call('HSET', KEYS[2], ARGV[1], cmsgpack.pack({ARGV[2], cur[1], cur[2], v}))
redis.call('HDEL', KEYS[1], 'since')
return state(tag)
"""

# ARGV: 1 sid, 2 now (repr of a float)
_U_DISCONNECT: Final = """
if redis.call('HDEL', KEYS[2], ARGV[1]) == 0 then return {'none'} end
bump()
if redis.call('HLEN', KEYS[2]) == 0 then
    redis.call('HSET', KEYS[1], 'since', ARGV[2])  -- the status stays: a reload must not flicker
    return state('lingering')
end
return state(recompute() and 'changed' or 'same')
"""

# ARGV: 1 sid, 2 status, 3 text, 4 '1' = all sessions
_U_SET_STATUS: Final = """
local mine = redis.call('HGET', KEYS[2], ARGV[1])
if not mine then return {'none'} end
local v = bump()
local targets = {ARGV[1], mine}
if ARGV[4] == '1' then targets = redis.call('HGETALL', KEYS[2]) end
for i = 1, #targets, 2 do
    local s = cmsgpack.unpack(targets[i + 1])
    redis.call('HSET', KEYS[2], targets[i], cmsgpack.pack({s[1], ARGV[2], ARGV[3], v}))
end
return state(recompute() and 'changed' or 'same')
"""

# ARGV: 1 actor, 2 public
_U_UPDATE_ACTOR: Final = """
if not exists() then return {'none'} end
if redis.call('HGET', KEYS[1], 'actor') == ARGV[1] then return state('same') end
redis.call('HSET', KEYS[1], 'actor', ARGV[1], 'public', ARGV[2])
bump()
return state('changed')
"""

# ARGV: 1 floor, 2 room, 3 '1' = only if now at (4 floor, 5 room)
_U_MOVE_BEGIN: Final = """
if not exists() then return {'none'} end
local at = redis.call('HMGET', KEYS[1], 'floor', 'room')
local floor, room = at[1] or '', at[2] or ''
if ARGV[3] == '1' and (floor ~= ARGV[4] or room ~= ARGV[5]) then return state('elsewhere') end
if floor == ARGV[1] and room == ARGV[2] then return state('same') end
local v = bump()
redis.call('HSET', KEYS[3], ARGV[1], int(v))  -- before f_enter: whoever commits later cleans it
return state('ok')
"""

# ARGV: 1 version of the begin, 2 floor, 3 room
_U_MOVE_COMMIT: Final = """
if not exists() then return {'gone'} end
if tonumber(redis.call('HGET', KEYS[1], 'locver') or '0') > tonumber(ARGV[1]) then
    return state('superseded')
end
relocate(ARGV[2], ARGV[3], tonumber(ARGV[1]))
return state('ok')
"""

# ARGV: 1 'leave' | 'expire' (2 since) | 'floor' (2 the deleted floor).
# Returns the state before, plus the new version.
_U_VACATE: Final = """
if not exists() then return {'none'} end
local floor = redis.call('HGET', KEYS[1], 'floor') or ''
if ARGV[1] == 'expire' then
    if redis.call('HLEN', KEYS[2]) > 0 or redis.call('HGET', KEYS[1], 'since') ~= ARGV[2] then return {'none'} end
elseif ARGV[1] == 'leave' and floor == '' and redis.call('HLEN', KEYS[3]) == 0 then
    return state('same')
end
local before = state('ok')
local v = bump()
if ARGV[1] ~= 'floor' or floor == ARGV[2] then
    relocate('', '', v)
else  -- on another floor: stay, but supersede any move still in flight
    redis.call('HSET', KEYS[1], 'locver', int(v))
end
before[#before + 1] = v
return before
"""

# ARGV: 1 version, 2.. floors confirmed clean
_U_PRUNE: Final = """
prune(tonumber(ARGV[1]), 2)
return 1
"""

# ARGV: 1 version of the vacate, 2.. floors confirmed clean
_U_EXPIRE_END: Final = """
if not exists() then return 'back' end
if tonumber(redis.call('HGET', KEYS[1], 'ver')) == tonumber(ARGV[1]) and redis.call('HLEN', KEYS[2]) == 0 then
    redis.call('DEL', KEYS[1], KEYS[2], KEYS[3])  -- privacy: nothing is kept once they are gone
    return 'gone'
end
prune(tonumber(ARGV[1]), 2)
return 'back'
"""

# -------------------------------------------------------------------- node Lua
# KEYS: 1 sids (HASH), 2 sessions (SET); ARGV: 1 sid, 2 user
_NODE_ADD: Final = """
if redis.call('HSETNX', KEYS[1], ARGV[1], ARGV[2]) == 0 then return 0 end
redis.call('SADD', KEYS[2], ARGV[2] .. '\\0' .. ARGV[1])
return 1
"""

SCRIPTS: Final[dict[str, str]] = {
    "f_enter": _FLOOR_LIB + _F_ENTER,
    "f_evacuate": _FLOOR_LIB + _F_EVACUATE,
    "f_update": _FLOOR_LIB + _F_UPDATE,
    "f_leave": _FLOOR_LIB + _F_LEAVE,
    "f_campus": _FLOOR_LIB + _F_CAMPUS,
    "f_drop": _FLOOR_LIB + _F_DROP,
    "f_raise_seq": _F_RAISE_SEQ,
    "u_connect": _USER_LIB + _U_CONNECT,
    "u_disconnect": _USER_LIB + _U_DISCONNECT,
    "u_set_status": _USER_LIB + _U_SET_STATUS,
    "u_update_actor": _USER_LIB + _U_UPDATE_ACTOR,
    "u_move_begin": _USER_LIB + _U_MOVE_BEGIN,
    "u_move_commit": _USER_LIB + _U_MOVE_COMMIT,
    "u_vacate": _USER_LIB + _U_VACATE,
    "u_prune": _USER_LIB + _U_PRUNE,
    "u_expire_end": _USER_LIB + _U_EXPIRE_END,
    "node_add": _NODE_ADD,
}
