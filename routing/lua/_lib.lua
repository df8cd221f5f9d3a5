-- Shared prelude of every routing script (prepended at load time). ARGV[1] is the key
-- prefix; a script's own arguments start at ARGV[2]. Mirrors routing/store/memory.py.
local P = ARGV[1]
local CHANNELS = {'phone', 'chat'}
local LOAD_WEIGHT = 1e10
local REQUEUE_HEAD = 1e10
local OFFERS = P .. ':offers'
local DROPS = P .. ':drops'
local QUEUES = P .. ':qs'
local FREEALL = P .. ':freeall'
local VOLS = P .. ':vols'

local function num(x) return string.format('%.17g', x) end
local function ck(cid) return P .. ':c:' .. cid end
local function vk(vid) return P .. ':v:' .. vid end
local function vck(vid) return P .. ':vc:' .. vid end
local function qk(b, ch) return P .. ':q:' .. b .. ':' .. ch end
local function qnk(ch) return P .. ':qn:' .. ch end
local function fk(b, ch) return P .. ':free:' .. b .. ':' .. ch end
local function dk(b, ch) return P .. ':duty:' .. b .. ':' .. ch end
local function bvk(b) return P .. ':bv:' .. b end
local function capk(ch) return P .. ':cap:' .. ch end
local function fnk(ch) return P .. ':fn:' .. ch end
-- ANY ('~') stands for every branch: its waiting queue is the channel's whole queue and
-- its free set every free volunteer of the channel (routing.policy.ANY).
local ANY = '~'
local function queue_key(b, ch) if b == ANY then return qnk(ch) end return qk(b, ch) end
local function free_key(b, ch) if b == ANY then return fnk(ch) end return fk(b, ch) end

local function weight(v, ch)
  if ch == 'chat' then return tonumber(v.chat_limit) end
  return 1
end

-- Take a volunteer out of the free and on-duty sets (before their branch or limit changes).
local function unlist(vid, v)
  for _, ch in ipairs(CHANNELS) do
    redis.call('ZREM', fk(v.branch, ch), vid)
    redis.call('ZREM', fnk(ch), vid)
    if redis.call('SREM', dk(v.branch, ch), vid) == 1 then
      redis.call('DECRBY', capk(ch), weight(v, ch))
    end
  end
end

local function refuse(code, detail)
  return redis.error_reply('REFUSED ' .. code .. ' ' .. (detail or ''))
end

local function hgetall(key)
  local flat = redis.call('HGETALL', key)
  if #flat == 0 then return nil end
  local t = {}
  for i = 1, #flat, 2 do t[flat[i]] = flat[i + 1] end
  return t
end

local function flatten(t)
  local out = {}
  for k, v in pairs(t) do out[#out + 1] = k; out[#out + 1] = tostring(v) end
  return out
end

local function has_channel(v, ch)
  return string.find(',' .. v.channels .. ',', ',' .. ch .. ',', 1, true) ~= nil
end

local function is_free(v, ch)
  if tonumber(v.disconnected_at) ~= 0 or not has_channel(v, ch) then return false end
  if v['p_' .. ch] ~= 'available' or tonumber(v.l_phone) > 0 then return false end
  if ch == 'phone' then return tonumber(v.l_chat) == 0 end
  return tonumber(v.l_chat) < tonumber(v.chat_limit)
end

-- Re-rank a volunteer in the free and on-duty sets; ``v``: their hash if already read.
local function refresh(vid, v)
  v = v or hgetall(vk(vid))
  if not v then return end
  local any = false
  for _, ch in ipairs(CHANNELS) do
    -- a channel the volunteer does not take is in none of their sets (upsert unlists)
    if not has_channel(v, ch) then
    elseif is_free(v, ch) then
      local rank = num(tonumber(v.l_chat) * LOAD_WEIGHT + tonumber(v.idle_since))
      redis.call('ZADD', fk(v.branch, ch), rank, vid)
      redis.call('ZADD', fnk(ch), rank, vid)
      any = true
    else
      redis.call('ZREM', fk(v.branch, ch), vid)
      redis.call('ZREM', fnk(ch), vid)
    end
    if not has_channel(v, ch) then
    elseif v['p_' .. ch] == 'available' then
      if redis.call('SADD', dk(v.branch, ch), vid) == 1 then
        redis.call('INCRBY', capk(ch), weight(v, ch))
      end
    elseif redis.call('SREM', dk(v.branch, ch), vid) == 1 then
      redis.call('DECRBY', capk(ch), weight(v, ch))
    end
  end
  if any then redis.call('SADD', FREEALL, vid) else redis.call('SREM', FREEALL, vid) end
end

local function queue_add(cid, c)
  redis.call('ZADD', qk(c.home, c.channel), c.score, cid)
  redis.call('ZADD', qnk(c.channel), c.score, cid)
  redis.call('SADD', QUEUES, c.home .. '\t' .. c.channel)
end

local function queue_rem(cid, c)
  redis.call('ZREM', qk(c.home, c.channel), cid)
  redis.call('ZREM', qnk(c.channel), cid)
end

-- Offer contact cid (hash c) to vid (hash v if already read; updated in place).
local function offer(cid, c, vid, now, timeout, v)
  v = v or hgetall(vk(vid))
  local expires = num(now + timeout)
  local load = 'l_' .. c.channel
  queue_rem(cid, c)
  redis.call('HSET', ck(cid), 'state', 'offered', 'offered_to', vid, 'offer_expires_at', expires)
  redis.call('ZADD', OFFERS, expires, cid)
  v[load] = tostring(tonumber(v[load]) + 1)
  v.idle_since = num(now)
  redis.call('HSET', vk(vid), load, v[load], 'idle_since', v.idle_since)
  redis.call('SADD', vck(vid), cid)
  refresh(vid, v)
  local requeued = '0'
  if tonumber(c.requeues) > 0 then requeued = '1' end
  return {cid, vid, c.channel, c.home, v.branch, expires, requeued}
end

local function unload(cid, c, vid, now, finished)
  if vid == '' or redis.call('EXISTS', vk(vid)) == 0 then return end
  if redis.call('SREM', vck(vid), cid) == 1 then
    redis.call('HINCRBY', vk(vid), 'l_' .. c.channel, -1)
  end
  if finished and redis.call('SCARD', vck(vid)) == 0 then
    redis.call('HSET', vk(vid), 'idle_since', num(now))
  end
  refresh(vid)
end

local function back_to_queue(cid, c, head)
  if head then
    c.score = num(tonumber(c.enqueued_at) - REQUEUE_HEAD)
    c.requeues = tostring(tonumber(c.requeues) + 1)
  end
  redis.call('ZREM', OFFERS, cid)
  c.state = 'waiting'; c.offered_to = ''; c.offer_expires_at = '0'
  redis.call('HSET', ck(cid), 'state', 'waiting', 'offered_to', '', 'offer_expires_at', '0',
    'score', c.score, 'requeues', c.requeues)
  queue_add(cid, c)
end

local function withdraw(cid, c, now)
  unload(cid, c, c.offered_to, now, false)
  back_to_queue(cid, c, false)
end

local function requeue_active(cid, c, now)
  unload(cid, c, c.volunteer, now, true)
  c.talked_s = num(tonumber(c.talked_s) + now - tonumber(c.answered_at))
  c.volunteer = ''; c.volunteer_branch = ''; c.answered_at = '0'
  redis.call('HSET', ck(cid), 'talked_s', c.talked_s, 'volunteer', '', 'volunteer_branch', '',
    'answered_at', '0')
  back_to_queue(cid, c, true)
end

local function delete(cid, c)
  redis.call('DEL', ck(cid))
  queue_rem(cid, c)
  redis.call('ZREM', OFFERS, cid)
  return flatten(c)
end
