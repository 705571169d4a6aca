"""The one Lua script of the leased Redis limiter (leased.py): decide, settle and lease atomically.

Per bucket (a sorted set of admission times, as in redis.py):

- `<bucket>` members are exact admissions (`<now>-<seq>`, scored at their moment), permits of a
  live lease (`<lease>:<j>`, scored at the lease's end, so each counts from its grant until a
  window after the latest moment it could be used), and settled permits (`<lease>:u<j>`, scored
  at the moment they were used);
- `<bucket>:l` is a hash of the leases not yet settled, lease id -> end (µs);
- `<bucket>:x` exists while the bucket is at its limit with permits held elsewhere: no new leases.

KEYS: the buckets. ARGV: "<window µs> <lease µs> <grace µs>", the recall channel, then per bucket
one string (few arguments: redis-py encodes each one, at a cost per argument): "<limit> <need
(1: this request is decided here)> <ask (permits to lease)> <new lease id> <settled lease id>
<its permits> <how many were used> <their moments (µs, server time)>...", '-' for no id.

Returns: server time, the wait (µs: > 0 when refused while permits are held elsewhere, recalled
now) and per bucket {allowed, count, oldest relevant µs, permits leased}.
"""

from __future__ import annotations

SCRIPT = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local window, lease, grace = string.match(ARGV[1], '^(%d+) (%d+) (%d+)$')
window, lease, grace = tonumber(window), tonumber(lease), tonumber(grace)
local channel = ARGV[2]
local horizon = now - window
local ttl = math.floor((window + lease + grace) / 1000) + 1000
local function in_chunks(command, key, items)  -- Lua's unpack has a stack limit
  for c = 1, #items, 4000 do
    redis.call(command, key, unpack(items, c, math.min(c + 3999, #items)))
  end
end
local FAIR = 4       -- a lease takes at most a quarter of what is left
local MIN_GRANT = 2  -- below that, one decision per request
local specs = {}
local ok = 1
for i, key in ipairs(KEYS) do
  local f = {}
  for word in string.gmatch(ARGV[2 + i], '%S+') do f[#f + 1] = word end
  local s = {limit = tonumber(f[1]), need = tonumber(f[2]), ask = tonumber(f[3]), id = f[4]}
  local old, permits, used = f[5], tonumber(f[6]), tonumber(f[7])
  redis.call('ZREMRANGEBYSCORE', key, '-inf', horizon)
  if old ~= '-' then
    local gone = {}
    for j = 1, permits do gone[j] = old .. ':' .. j end
    in_chunks('ZREM', key, gone)
    local moments = {}
    for j = 1, used do
      local at = tonumber(f[7 + j])
      if at > horizon then
        moments[#moments + 1] = at
        moments[#moments + 1] = old .. ':u' .. j
      end
    end
    if #moments > 0 then
      in_chunks('ZADD', key, moments)
      redis.call('PEXPIRE', key, ttl)
    end
    if redis.call('HDEL', key .. ':l', old) == 1 and redis.call('EXISTS', key .. ':x') == 1 then
      redis.call('PUBLISH', channel, 's' .. key)
    end
  end
  s.count = redis.call('ZCARD', key)
  if s.need == 1 and s.count >= s.limit then ok = 0 end
  specs[i] = s
end
local wait = 0
if ok == 0 then
  for i, key in ipairs(KEYS) do
    local s = specs[i]
    if s.need == 1 and s.count >= s.limit then
      local rows = redis.call('HGETALL', key .. ':l')
      local soonest = -1
      for j = 1, #rows, 2 do
        local ends = tonumber(rows[j + 1]) + grace
        if ends <= now then
          redis.call('HDEL', key .. ':l', rows[j])
        elseif soonest < 0 or ends < soonest then
          soonest = ends
        end
      end
      if soonest > 0 then
        redis.call('SET', key .. ':x', '1', 'PX', math.floor(lease / 1000) + 1)
        redis.call('PUBLISH', channel, 'r' .. key)
        if soonest - now > wait then wait = soonest - now end
      end
    end
  end
end
local out = {now, wait}
for i, key in ipairs(KEYS) do
  local s = specs[i]
  local oldest = now
  local granted = 0
  if ok == 1 and s.need == 1 then
    local seq = redis.call('INCR', key .. ':seq')
    redis.call('PEXPIRE', key .. ':seq', ttl)
    redis.call('ZADD', key, now, now .. '-' .. seq)
    redis.call('PEXPIRE', key, ttl)
    s.count = s.count + 1
  end
  if ok == 1 and s.ask > 0 and redis.call('EXISTS', key .. ':x') == 0 then
    local room = s.limit - s.count
    granted = math.min(s.ask, math.floor(room / FAIR))
    if granted < MIN_GRANT then
      granted = 0
    else
      local ends = now + lease
      local args = {}
      for j = 1, granted do
        args[#args + 1] = ends
        args[#args + 1] = s.id .. ':' .. j
      end
      in_chunks('ZADD', key, args)
      redis.call('PEXPIRE', key, ttl)
      redis.call('HSET', key .. ':l', s.id, ends)
      redis.call('PEXPIRE', key .. ':l', ttl)
      s.count = s.count + granted
    end
  end
  if s.need == 1 and ok == 0 and s.count >= s.limit then
    local nth = redis.call('ZRANGE', key, s.count - s.limit, s.count - s.limit, 'WITHSCORES')
    if nth[2] then oldest = tonumber(nth[2]) end
  else
    local first = redis.call('ZRANGE', key, 0, 0, 'WITHSCORES')
    if first[2] and tonumber(first[2]) < now then oldest = tonumber(first[2]) end
  end
  table.insert(out, ok)
  table.insert(out, s.count)
  table.insert(out, oldest)
  table.insert(out, granted)
end
return out
"""
