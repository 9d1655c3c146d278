"""The Lua scripts of the Redis call store, one string each.

Every script gets the same nine keys, all in the ``{calls}`` hash tag (see
:mod:`presence_server.calls.store_redis` for the layout and why one slot),
and answers with one msgpack blob: a map with ``err`` (an error code and a
detail) or the result. Records are msgpack arrays, so Lua reads and writes
them with the ``cmsgpack`` library Redis ships:

* call: ``[id, kind, room_id ("" for none), members (array), created_at, topology]``,
  and in results a seventh field ``ended_at`` (false while the call goes on);
* ring: ``[caller (packed actor, opaque here), caller_id, callee, created_at, expires_at]``;
* notes of a callee: an array of ``[caller_id, packed note]``, oldest first.

Numbers that become Redis arguments (scores) arrive as strings in ARGV and are
passed on as they came: Lua would print a large float with 14 digits.
"""

from __future__ import annotations

from typing import Final

__all__ = ["SCRIPTS"]

# KEYS: 1 calls (HASH id -> call), 2 user_call (HASH user -> call id),
# 3 room_call (HASH room -> call id), 4 seq (STRING), 5 rings (HASH id -> ring),
# 6 ringing (HASH "caller\ncallee" -> ring id), 7 deadlines (ZSET ring id -> expires_at),
# 8 recent (ZSET ring id -> resolved at), 9 notes (HASH callee -> notes).
_LIB: Final = """
local function err(code, detail) return cmsgpack.pack({err = {code, detail or ''}}) end
local function load_call(id)
    local raw = redis.call('HGET', KEYS[1], id)
    if not raw then return nil end
    return cmsgpack.unpack(raw)
end
local function save_call(c)
    redis.call('HSET', KEYS[1], c[1], cmsgpack.pack({c[1], c[2], c[3], c[4], c[5], c[6]}))
end
local function without(list, x)
    local out = {}
    for _, v in ipairs(list) do if v ~= x then out[#out + 1] = v end end
    return out
end
-- Take the user out of their call. Returns nil, or the call after the departure,
-- with c[7] = now when the departure ended it (nobody left, or a direct call down to one).
local function remove(user, now)
    local id = redis.call('HGET', KEYS[2], user)
    if not id then return nil end
    redis.call('HDEL', KEYS[2], user)
    local c = load_call(id)
    if not c then return nil end  -- a dangling pointer: nothing to tell
    c[4] = without(c[4], user)
    if #c[4] > 0 and not (c[2] == 'direct' and #c[4] < 2) then
        save_call(c)
        c[7] = false
        return c
    end
    redis.call('HDEL', KEYS[1], id)
    for _, m in ipairs(c[4]) do redis.call('HDEL', KEYS[2], m) end
    if c[3] ~= '' and redis.call('HGET', KEYS[3], c[3]) == id then redis.call('HDEL', KEYS[3], c[3]) end
    c[7] = now
    return c
end
"""

# ARGV: user, room, now, max_mesh, sfu ("1"/"0"), call id ("" to generate).
_JOIN_ROOM: Final = """
local user, room, now = ARGV[1], ARGV[2], tonumber(ARGV[3])
local max_mesh, sfu, wanted = tonumber(ARGV[4]), ARGV[5] == '1', ARGV[6]
local current = redis.call('HGET', KEYS[3], room)
local call = nil
if current then
    call = load_call(current)
    if call and redis.call('HGET', KEYS[2], user) == current then
        call[7] = false
        return cmsgpack.pack({call = call, created = false})
    end
end
if call and #call[4] >= max_mesh and not sfu then return err('call_full') end
if not call and wanted ~= '' and redis.call('HEXISTS', KEYS[1], wanted) == 1 then
    return err('conflict', 'call_id_taken')
end
local left = remove(user, now)
local created = false
if not call then
    local id = wanted
    if id == '' then id = 'room:' .. room .. ':' .. redis.call('INCR', KEYS[4]) end
    call = {id, 'room', room, {user}, now, 'mesh'}
    redis.call('HSET', KEYS[3], room, id)
    created = true
else
    call[4][#call[4] + 1] = user
    if #call[4] > max_mesh then call[6] = 'sfu' end  -- never back to mesh within a call
end
save_call(call)
redis.call('HSET', KEYS[2], user, call[1])
call[7] = false
local out = {call = call, created = created}
if left then out.left = left end
return cmsgpack.pack(out)
"""

# ARGV: user, now, room ("" leaves whatever call; a room leaves only that room's call).
_LEAVE: Final = """
local user, now, room = ARGV[1], tonumber(ARGV[2]), ARGV[3]
if room ~= '' then
    local id = redis.call('HGET', KEYS[3], room)
    if not id or redis.call('HGET', KEYS[2], user) ~= id then return cmsgpack.pack({}) end
end
local c = remove(user, now)
if c then return cmsgpack.pack({call = c}) end
return cmsgpack.pack({})
"""

# ARGV: user. The user's call, if any.
_CALL_OF: Final = """
local id = redis.call('HGET', KEYS[2], ARGV[1])
if not id then return cmsgpack.pack({}) end
local c = load_call(id)
if not c then return cmsgpack.pack({}) end
c[7] = false
return cmsgpack.pack({call = c})
"""

# ARGV: ring id, caller id, packed caller, callee, dnd ("1"/"0"), now, expires_at.
_RING: Final = """
local id, caller, packed, callee = ARGV[1], ARGV[2], ARGV[3], ARGV[4]
if caller == callee then return err('invalid_payload', 'cannot_ring_yourself') end
if redis.call('HEXISTS', KEYS[5], id) == 1 or redis.call('ZSCORE', KEYS[8], id) then
    return err('conflict', 'ring_id_taken')
end
local pair = caller .. '\\n' .. callee
if redis.call('HEXISTS', KEYS[6], pair) == 1 then return err('conflict', 'already_ringing') end
local mine = redis.call('HGET', KEYS[2], caller)
if mine and redis.call('HGET', KEYS[2], callee) == mine then return err('conflict', 'already_in_call') end
if ARGV[5] == '1' then return err('do_not_disturb') end
local ring = {packed, caller, callee, tonumber(ARGV[6]), tonumber(ARGV[7])}
redis.call('HSET', KEYS[5], id, cmsgpack.pack(ring))
redis.call('HSET', KEYS[6], pair, id)
redis.call('ZADD', KEYS[7], ARGV[7], id)
return cmsgpack.pack({ring = ring})
"""

# ARGV: ring id, who, action, now, recent limit. Actions: accept, decline (by the
# callee), cancel (by the caller), expire (when due), unavailable, cancel_all.
# The decision is the HDEL of the ring: whoever runs first resolves it.
_RESOLVE: Final = """
local id, who, action, now, limit = ARGV[1], ARGV[2], ARGV[3], tonumber(ARGV[4]), tonumber(ARGV[5])
local raw = redis.call('HGET', KEYS[5], id)
if not raw then
    if redis.call('ZSCORE', KEYS[8], id) then return err('ring_resolved') end
    return err('not_found', 'ring')
end
local ring = cmsgpack.unpack(raw)
local caller, callee, expires = ring[2], ring[3], ring[5]
local outcome, by = nil, false
if action == 'accept' or action == 'decline' then
    if who ~= callee then return err('forbidden', 'not_callee') end
    if now >= expires then outcome = 'expired'
    elseif action == 'accept' then outcome, by = 'accepted', who
    else outcome, by = 'declined', who end
elseif action == 'cancel' then
    if who ~= caller then return err('forbidden', 'not_caller') end
    if now >= expires then outcome = 'expired' else outcome, by = 'cancelled', who end
elseif action == 'expire' then
    if now < expires then return err('conflict', 'not_due') end
    outcome = 'expired'
elseif action == 'unavailable' then outcome = 'unavailable'
elseif action == 'cancel_all' then outcome, by = 'cancelled', caller
else return err('invalid_payload', 'action') end
local out = {ring = ring, outcome = outcome, by = by}
if outcome == 'accepted' then
    local left, order = {}, {}
    for _, c in ipairs({remove(caller, now) or false, remove(callee, now) or false}) do
        if c then
            if not left[c[1]] then order[#order + 1] = c[1] end
            left[c[1]] = c  -- both were in one call: keep its value after both left
        end
    end
    local list = {}
    for _, cid in ipairs(order) do list[#list + 1] = left[cid] end
    local call = {'direct:' .. id, 'direct', '', {caller, callee}, now, 'mesh'}
    save_call(call)
    redis.call('HSET', KEYS[2], caller, call[1])
    redis.call('HSET', KEYS[2], callee, call[1])
    call[7] = false
    out.call = call
    out.left = list
end
redis.call('HDEL', KEYS[5], id)
redis.call('HDEL', KEYS[6], caller .. '\\n' .. callee)
redis.call('ZREM', KEYS[7], id)
redis.call('ZADD', KEYS[8], ARGV[4], id)
redis.call('ZREMRANGEBYRANK', KEYS[8], 0, -limit - 1)
return cmsgpack.pack(out)
"""

# ARGV: callee, caller id, packed note, notes per callee.
_NOTE: Final = """
local raw = redis.call('HGET', KEYS[9], ARGV[1])
local box = {}
if raw then
    for _, n in ipairs(cmsgpack.unpack(raw)) do
        if n[1] ~= ARGV[2] then box[#box + 1] = n end  -- a caller's new note replaces theirs
    end
end
if #box >= tonumber(ARGV[4]) then return err('conflict', 'note_box_full') end
box[#box + 1] = {ARGV[2], ARGV[3]}
redis.call('HSET', KEYS[9], ARGV[1], cmsgpack.pack(box))
return cmsgpack.pack({})
"""

# ARGV: callee. Takes the notes (a second call returns none).
_TAKE_NOTES: Final = """
local raw = redis.call('HGET', KEYS[9], ARGV[1])
if not raw then return cmsgpack.pack({notes = {}}) end
redis.call('HDEL', KEYS[9], ARGV[1])
return cmsgpack.pack({notes = cmsgpack.unpack(raw)})
"""

SCRIPTS: Final[dict[str, str]] = {
    name: _LIB + body
    for name, body in {
        "join_room": _JOIN_ROOM,
        "leave": _LEAVE,
        "call_of": _CALL_OF,
        "ring": _RING,
        "resolve": _RESOLVE,
        "note": _NOTE,
        "take_notes": _TAKE_NOTES,
    }.items()
}
