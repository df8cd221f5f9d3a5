"""The conversation store: the only place message text ever lives, and only for a while.

A conversation is keyed by the routing contact id. It holds:

* ``meta``: a small hash (token hash, state, volunteer id and alias, channel);
* ``log``: the sequenced entries both sides see (messages, joins, notices, the end),
  the entry with sequence number *n* at list index *n - 1*;
* ``ids``: client message id → sequence number, so a retried message is stored once;
* a token key: sha256(token) → contact id. The token itself is never stored;
* message text only sealed (AES-GCM under ``CHANNEL_LAYER_KEY``; ``entry_seal``): a
  Redis dump or a snapshot on disk holds no readable text, and what the relay publishes
  is the stored entry, so text crosses Redis sealed too;
* ``rate``: how many client frames the conversation's caller sent in the current rate
  window (a bare count under the conversation id, expiring with the window). The
  console's count is per volunteer (``v:<volunteer id>:rate``).

Guarantees:

* ``append`` assigns the next sequence number, de-duplicates by client id and stores
  the entry in **one** atomic step (a Lua script on Redis; one critical section in
  memory), so concurrent appends from several processes never share a number.
* Every key expires (``CHAT_RETENTION_S``, refreshed on each append; a rate count
  when its window ends) and ``conversation_delete`` removes them all when the
  conversation ends.
* A frame counted over the rate limit changes nothing but the count: ``append`` with a
  rate scope counts first and refuses before it looks at anything else.
* ``append`` and ``signal`` also publish what they store or check, in the same step
  (Redis: ``PUBLISH`` inside the script, to the conversation's relay channel; memory:
  handed to the process's relay), so an entry is relayed only once it is stored.

Two implementations behind one interface: Redis (production, tests) and process
memory (the embedded demo, which runs one process).
"""

from __future__ import annotations

import base64
import hashlib
import json
import logging
import os
import threading
import time
from dataclasses import dataclass
from typing import Any, Protocol

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from django.conf import settings

from chat.redis import redis_client, redis_line, redis_script
from listenline.redis_line import Script

logger = logging.getLogger(__name__)

#: Counts one frame in a rate window: the first frame of a window sets its expiry, so
#: the count is gone ``window`` after it started (a fixed window). Returns the count.
#: KEYS: the rate key.  ARGV: window in milliseconds.
RATE_HIT_LUA = """
local n = redis.call('INCR', KEYS[1])
if n == 1 then redis.call('PEXPIRE', KEYS[1], ARGV[1]) end
return n
"""

#: Counts the frame (when a rate key is given), checks the conversation, appends,
#: de-duplicates and stores in one step (one round trip, called by SHA). Returns {seq,
#: duplicate(0/1), stored entry when duplicate} or {-4, count} over the rate limit,
#: {-1} ended/missing, {-2} not active, {-3} another volunteer's.
#: KEYS: meta, log, ids, rate (only read when the limit is set).  ARGV: client key (''
#: for none), entry body (JSON without the opening brace), ttl seconds, require_open
#: ('1' refuses when meta is missing/ended), require_active ('1' also refuses a
#: conversation that is not active), volunteer id ('' for none: when set, the
#: conversation must be this volunteer's), rate limit ('0': not counted), rate window ms,
#: relay channel ('' publishes nothing), origin (the sending socket's relay id, or '').
#: The stored entry is published as ``{"type":"chat.entry","origin":…,"entry":…}``.
APPEND_LUA = """
local meta, log, ids = KEYS[1], KEYS[2], KEYS[3]
local ckey, body, ttl, require_open = ARGV[1], ARGV[2], tonumber(ARGV[3]), ARGV[4]
local require_active, vid, limit = ARGV[5], ARGV[6], tonumber(ARGV[7])
if limit > 0 then
  local n = redis.call('INCR', KEYS[4])
  if n == 1 then redis.call('PEXPIRE', KEYS[4], ARGV[8]) end
  if n > limit then return {-4, n} end
end
if require_open == '1' then
  local m = redis.call('HMGET', meta, 'state', 'volunteer_id')
  local state = m[1]
  if (not state) or state == 'ended' then return {-1} end
  if vid and vid ~= '' and m[2] ~= vid then return {-3} end
  if require_active == '1' and state ~= 'active' then return {-2} end
end
if ckey ~= '' then
  local seen = redis.call('HGET', ids, ckey)
  if seen then return {tonumber(seen), 1, redis.call('LINDEX', log, tonumber(seen) - 1)} end
end
local seq = redis.call('RPUSH', log, '')
local stored = '{"seq":' .. seq .. ',' .. body
redis.call('LSET', log, seq - 1, stored)
if ckey ~= '' then
  redis.call('HSET', ids, ckey, seq)
  redis.call('EXPIRE', ids, ttl)
end
redis.call('EXPIRE', log, ttl)
redis.call('EXPIRE', meta, ttl)
if ARGV[9] ~= '' then
  redis.call('PUBLISH', ARGV[9],
    '{"type":"chat.entry","origin":"' .. ARGV[10] .. '","entry":' .. stored .. '}')
end
return {seq, 0}
"""

#: Checks that a conversation is open (and, with a volunteer id, that volunteer's) and
#: publishes a signal to its relay channel. Returns 1, or {-1}/{-3} as ``APPEND_LUA``.
#: KEYS: meta.  ARGV: relay channel, volunteer id ('' for the caller), event JSON.
SIGNAL_LUA = """
local m = redis.call('HMGET', KEYS[1], 'state', 'volunteer_id')
if (not m[1]) or m[1] == 'ended' then return -1 end
if ARGV[2] ~= '' and m[2] ~= ARGV[2] then return -3 end
redis.call('PUBLISH', ARGV[1], ARGV[3])
return 1
"""

#: Claims due entries of a sorted set (deadline scores) atomically: ZREM decides who wins.
CLAIM_DUE_LUA = """
local due = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', ARGV[1], 'LIMIT', 0, 100)
if #due > 0 then redis.call('ZREM', KEYS[1], unpack(due)) end
return due
"""


META_SET_LUA = """
if redis.call('EXISTS', KEYS[1]) == 1 then redis.call('HSET', KEYS[1], unpack(ARGV)) return 1 end
return 0
"""

#: The per-message scripts, called over the pipelined line (``chat.redis.redis_line``).
APPEND, SIGNAL, RATE_HIT = Script(APPEND_LUA), Script(SIGNAL_LUA), Script(RATE_HIT_LUA)


class ConversationClosed(Exception):
    """The conversation has ended (or never existed): nothing was appended."""


class ConversationNotActive(Exception):
    """``require_active``: the conversation is waiting (no volunteer): nothing appended."""


class ConversationNotYours(Exception):
    """``volunteer_id``: the conversation is another volunteer's: nothing appended."""


class RateExceeded(Exception):
    """``rate``: the frame was counted over the limit; nothing else was changed."""

    def __init__(self, count: int) -> None:
        super().__init__(count)
        self.count = count


_REFUSALS: dict[int, type[Exception]] = {
    -1: ConversationClosed,
    -2: ConversationNotActive,
    -3: ConversationNotYours,
}


@dataclass(frozen=True)
class RateWindow:
    """One frame to count: whose (``scope`` ``"c"``: a conversation's caller, ``key`` its
    contact id; ``"v"``: a volunteer, ``key`` their id), how many frames a window
    allows and how long a window lasts. Nothing identifying is ever part of it."""

    scope: str
    key: str
    limit: int
    window_s: float

    @property
    def window_ms(self) -> int:
        return max(1, round(self.window_s * 1000))


@dataclass(frozen=True)
class Appended:
    seq: int
    duplicate: bool
    entry: dict[str, Any]


def token_hash(token: str) -> str:
    """What the store keeps instead of the token: a bearer secret is never stored."""
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value


def retention_s() -> int:
    return int(getattr(settings, "CHAT_RETENTION_S", 6 * 3600))


def _body(entry: dict[str, Any]) -> str:
    """The entry as JSON without its opening brace, so the script can prefix ``seq``."""
    encoded = json.dumps(entry, ensure_ascii=False, separators=(",", ":"))
    return encoded[1:]


def relay_channel(prefix: str, contact_id: str) -> str:
    """The Redis pub/sub channel a conversation's entries and signals are published to."""
    return f"{prefix}:r:{contact_id}"


_ciphers: dict[str, AESGCM] = {}


def _cipher() -> AESGCM:
    key = str(settings.CHANNEL_LAYER_KEY)
    cipher = _ciphers.get(key)
    if cipher is None:
        digest = hashlib.sha256(b"listenline chat text\0" + key.encode("utf-8")).digest()
        cipher = _ciphers[key] = AESGCM(digest)
    return cipher


def entry_seal(entry: dict[str, Any]) -> dict[str, Any]:
    """The stored form of an entry: a message's ``text`` replaced by ``sealed``
    (base64 of a random 96-bit nonce and the AES-GCM ciphertext)."""
    text = entry.get("text")
    if text is None:
        return entry
    nonce = os.urandom(12)
    box = _cipher().encrypt(nonce, text.encode("utf-8"), None)
    sealed = {k: v for k, v in entry.items() if k != "text"}
    sealed["sealed"] = base64.b64encode(nonce + box).decode("ascii")
    return sealed


def entry_open(entry: dict[str, Any]) -> dict[str, Any]:
    """Undo ``entry_seal`` in place (and return the entry). Text sealed under another key
    (``CHANNEL_LAYER_KEY`` changed while the conversation lived) opens as empty text: the
    entry keeps its place in the log, and nothing is logged but that it happened."""
    sealed = entry.pop("sealed", None)
    if sealed is not None:
        try:
            raw = base64.b64decode(sealed)
            entry["text"] = _cipher().decrypt(raw[:12], raw[12:], None).decode("utf-8")
        except (ValueError, InvalidTag):
            logger.warning("a chat message could not be opened (was the key changed?)")
            entry["text"] = ""
    return entry


class ConversationStore(Protocol):
    async def conversation_open(
        self,
        *,
        contact_id: str,
        token_hash: str | None,
        fields: dict[str, str],
        overwrite: bool = True,
    ) -> None:
        """Create or update the meta hash; ``overwrite=False`` keeps fields already set
        (a volunteer who accepted before the caller's page got its token wins)."""
        ...

    async def token_lookup(self, *, token_hash: str) -> str | None: ...
    async def meta_get(self, *, contact_id: str) -> dict[str, str]: ...
    async def meta_set(self, *, contact_id: str, fields: dict[str, str]) -> None: ...
    async def append(
        self,
        *,
        contact_id: str,
        client_key: str | None,
        entry: dict[str, Any],
        require_open: bool = True,
        require_active: bool = False,
        volunteer_id: int | None = None,
        rate: RateWindow | None = None,
        origin: str = "",
    ) -> Appended:
        """Count the frame (with ``rate``), check (open; with ``require_active`` active;
        with ``volunteer_id`` that volunteer's), assign the next seq, de-duplicate and
        store, atomically. Raises ``RateExceeded``, ``ConversationClosed``,
        ``ConversationNotYours`` or ``ConversationNotActive`` (checked in that order)
        and appends nothing then. A new entry is published to the conversation's relay
        in the same step, marked with ``origin`` (the sending socket's relay id)."""
        ...

    async def signal(
        self, *, contact_id: str, volunteer_id: int | None, event: dict[str, Any]
    ) -> None:
        """Publish ``event`` (nothing stored) if the conversation is open and, with
        ``volunteer_id``, that volunteer's; else ``ConversationClosed`` or
        ``ConversationNotYours`` and nothing is published."""
        ...

    async def rate_hit(self, *, rate: RateWindow) -> int:
        """Count one frame in the current window of ``rate``; return the count, this
        frame included. The count expires when its window ends."""
        ...

    async def since(self, *, contact_id: str, after: int) -> list[dict[str, Any]]: ...
    async def last_seq(self, *, contact_id: str) -> int: ...
    async def conversation_delete(self, *, contact_id: str) -> None: ...
    async def deadline_set(self, *, name: str, contact_id: str, at: float) -> None: ...
    async def deadline_clear(self, *, name: str, contact_id: str) -> None: ...
    async def deadlines_claim(self, *, name: str, now: float) -> list[str]: ...
    async def volunteer_contacts(self, *, volunteer_id: int) -> set[str]: ...
    async def volunteer_contact_set(
        self, *, volunteer_id: int, contact_id: str, present: bool
    ) -> None: ...


class RedisConversationStore:
    """Production store; every key under ``CHAT_REDIS_PREFIX`` with an expiry."""

    def __init__(self, prefix: str | None = None) -> None:
        self.prefix: str = prefix or str(getattr(settings, "CHAT_REDIS_PREFIX", "ll:chat"))

    def _k(self, contact_id: str, part: str) -> str:
        return f"{self.prefix}:c:{{{contact_id}}}:{part}"

    def _tok(self, token_hash: str) -> str:
        return f"{self.prefix}:t:{token_hash}"

    def _rate(self, rate: RateWindow) -> str:
        """A conversation's count sits with the conversation's keys (same hash slot); a
        volunteer's beside their contact set. The append script of a console message
        touches both slots: fine on the one Redis instance we run, a cluster would need
        that count as its own call."""
        if rate.scope == "c":
            return self._k(rate.key, "rate")
        return f"{self.prefix}:{rate.scope}:{rate.key}:rate"

    async def conversation_open(
        self,
        *,
        contact_id: str,
        token_hash: str | None,
        fields: dict[str, str],
        overwrite: bool = True,
    ) -> None:
        r = redis_client()
        ttl = retention_s()
        meta = self._k(contact_id, "meta")
        async with r.pipeline(transaction=True) as pipe:
            for name, value in fields.items():
                (pipe.hset if overwrite else pipe.hsetnx)(meta, name, value)
            if token_hash:
                pipe.hset(meta, "token_hash", token_hash)
            pipe.expire(meta, ttl)
            if token_hash:
                pipe.set(self._tok(token_hash), contact_id, ex=ttl)
            await pipe.execute()

    async def token_lookup(self, *, token_hash: str) -> str | None:
        value = await redis_client().get(self._tok(token_hash))
        return _text(value) if value is not None else None

    async def meta_get(self, *, contact_id: str) -> dict[str, str]:
        raw = await redis_client().hgetall(self._k(contact_id, "meta"))
        return {_text(k): _text(v) for k, v in raw.items()}

    async def meta_set(self, *, contact_id: str, fields: dict[str, str]) -> None:
        # Only an existing conversation is updated: a late write must not resurrect one.
        flat = [part for pair in fields.items() for part in pair]
        r = redis_client()
        await redis_script(META_SET_LUA)(keys=[self._k(contact_id, "meta")], args=flat, client=r)

    async def append(
        self,
        *,
        contact_id: str,
        client_key: str | None,
        entry: dict[str, Any],
        require_open: bool = True,
        require_active: bool = False,
        volunteer_id: int | None = None,
        rate: RateWindow | None = None,
        origin: str = "",
    ) -> Appended:
        keys = [self._k(contact_id, p) for p in ("meta", "log", "ids")]
        args: list[str | int] = [
            client_key or "",
            _body(entry_seal(entry)),
            retention_s(),
            "1" if require_open else "0",
            "1" if require_active else "0",
            "" if volunteer_id is None else str(volunteer_id),
            rate.limit if rate else 0,
            rate.window_ms if rate else 0,
            relay_channel(self.prefix, contact_id),
            origin,
        ]
        if rate:
            keys.append(self._rate(rate))
        result = await redis_line().run(APPEND, keys, args)
        seq = int(result[0])
        if seq == -4:
            raise RateExceeded(int(result[1]))
        if seq < 0:
            raise _REFUSALS[seq](contact_id)
        if int(result[1]):
            stored = result[2] if len(result) > 2 else None
            found = entry_open(json.loads(stored)) if stored else {"seq": seq, **entry}
            return Appended(seq, True, found)
        return Appended(seq, False, {"seq": seq, **entry})

    async def signal(
        self, *, contact_id: str, volunteer_id: int | None, event: dict[str, Any]
    ) -> None:
        args = [
            relay_channel(self.prefix, contact_id),
            "" if volunteer_id is None else str(volunteer_id),
            json.dumps(event, separators=(",", ":")),
        ]
        keys = [self._k(contact_id, "meta")]
        result = await redis_line().run(SIGNAL, keys, args)
        if int(result) < 0:
            raise _REFUSALS[int(result)](contact_id)

    async def rate_hit(self, *, rate: RateWindow) -> int:
        return int(await redis_line().run(RATE_HIT, [self._rate(rate)], [rate.window_ms]))

    async def since(self, *, contact_id: str, after: int) -> list[dict[str, Any]]:
        raw = await redis_line().call(b"LRANGE", self._k(contact_id, "log"), max(after, 0), -1)
        return [entry_open(json.loads(item)) for item in raw if item]

    async def last_seq(self, *, contact_id: str) -> int:
        return int(await redis_line().call(b"LLEN", self._k(contact_id, "log")))

    async def conversation_delete(self, *, contact_id: str) -> None:
        r = redis_client()
        meta = await self.meta_get(contact_id=contact_id)
        keys = [self._k(contact_id, p) for p in ("meta", "log", "ids", "rate")]
        if meta.get("token_hash"):
            keys.append(self._tok(meta["token_hash"]))
        await r.delete(*keys)

    def _z(self, name: str) -> str:
        return f"{self.prefix}:due:{name}"

    async def deadline_set(self, *, name: str, contact_id: str, at: float) -> None:
        await redis_client().zadd(self._z(name), {contact_id: at})

    async def deadline_clear(self, *, name: str, contact_id: str) -> None:
        await redis_client().zrem(self._z(name), contact_id)

    async def deadlines_claim(self, *, name: str, now: float) -> list[str]:
        r = redis_client()
        due = await redis_script(CLAIM_DUE_LUA)(keys=[self._z(name)], args=[now], client=r)
        return [d.decode() for d in due]

    def _v(self, volunteer_id: int) -> str:
        return f"{self.prefix}:v:{volunteer_id}"

    async def volunteer_contacts(self, *, volunteer_id: int) -> set[str]:
        return {_text(m) for m in await redis_client().smembers(self._v(volunteer_id))}

    async def volunteer_contact_set(
        self, *, volunteer_id: int, contact_id: str, present: bool
    ) -> None:
        r = redis_client()
        if present:
            await r.sadd(self._v(volunteer_id), contact_id)
            await r.expire(self._v(volunteer_id), retention_s())
        else:
            await r.srem(self._v(volunteer_id), contact_id)


class MemoryConversationStore:
    """The embedded demo's store: one process, one lock, the same expiries."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._meta: dict[str, dict[str, str]] = {}
        self._log: dict[str, list[dict[str, Any]]] = {}
        self._ids: dict[str, dict[str, int]] = {}
        self._tokens: dict[str, str] = {}
        self._expires: dict[str, float] = {}
        self._due: dict[str, dict[str, float]] = {}
        self._vol: dict[int, set[str]] = {}
        self._rates: dict[tuple[str, str], tuple[int, float]] = {}  # → (count, window end)

    def _sweep(self) -> None:
        now = time.monotonic()
        for cid in [c for c, t in self._expires.items() if t < now]:
            self._drop(cid)

    def _drop(self, contact_id: str) -> None:
        self._rates.pop(("c", contact_id), None)
        meta = self._meta.pop(contact_id, {})
        self._tokens.pop(meta.get("token_hash", ""), None)
        self._log.pop(contact_id, None)
        self._ids.pop(contact_id, None)
        self._expires.pop(contact_id, None)

    async def conversation_open(
        self,
        *,
        contact_id: str,
        token_hash: str | None,
        fields: dict[str, str],
        overwrite: bool = True,
    ) -> None:
        with self._lock:
            self._sweep()
            meta = self._meta.setdefault(contact_id, {})
            for name, value in fields.items():
                if overwrite or name not in meta:
                    meta[name] = value
            if token_hash:
                meta["token_hash"] = token_hash
            if token_hash:
                self._tokens[token_hash] = contact_id
            self._expires[contact_id] = time.monotonic() + retention_s()

    async def token_lookup(self, *, token_hash: str) -> str | None:
        with self._lock:
            self._sweep()
            return self._tokens.get(token_hash)

    async def meta_get(self, *, contact_id: str) -> dict[str, str]:
        with self._lock:
            return dict(self._meta.get(contact_id, {}))

    async def meta_set(self, *, contact_id: str, fields: dict[str, str]) -> None:
        with self._lock:
            if contact_id in self._meta:
                self._meta[contact_id].update(fields)

    async def append(
        self,
        *,
        contact_id: str,
        client_key: str | None,
        entry: dict[str, Any],
        require_open: bool = True,
        require_active: bool = False,
        volunteer_id: int | None = None,
        rate: RateWindow | None = None,
        origin: str = "",
    ) -> Appended:
        appended = self._append(
            contact_id, client_key, entry, require_open, require_active, volunteer_id, rate
        )
        if not appended.duplicate:
            event = {"type": "chat.entry", "origin": origin, "entry": appended.entry}
            await _local_dispatch(contact_id, event)
        return appended

    async def signal(
        self, *, contact_id: str, volunteer_id: int | None, event: dict[str, Any]
    ) -> None:
        with self._lock:
            self._open_meta(contact_id, volunteer_id)
        await _local_dispatch(contact_id, event)

    def _open_meta(self, contact_id: str, volunteer_id: int | None) -> dict[str, str]:
        """Under the lock: the meta of an open conversation (with ``volunteer_id``, that
        volunteer's), as the scripts check it; else the scripts' refusal."""
        meta = self._meta.get(contact_id)
        if meta is None or meta.get("state") == "ended":
            raise ConversationClosed(contact_id)
        if volunteer_id is not None and meta.get("volunteer_id") != str(volunteer_id):
            raise ConversationNotYours(contact_id)
        return meta

    def _append(
        self,
        contact_id: str,
        client_key: str | None,
        entry: dict[str, Any],
        require_open: bool,
        require_active: bool,
        volunteer_id: int | None,
        rate: RateWindow | None,
    ) -> Appended:
        with self._lock:
            if rate is not None:
                count = self._rate_hit(rate)
                if count > rate.limit:
                    raise RateExceeded(count)
            if require_open:
                meta = self._open_meta(contact_id, volunteer_id)
                if require_active and meta.get("state") != "active":
                    raise ConversationNotActive(contact_id)
            ids = self._ids.setdefault(contact_id, {})
            log = self._log.setdefault(contact_id, [])
            if client_key and client_key in ids:
                seq = ids[client_key]
                return Appended(seq, True, log[seq - 1])
            stored = {"seq": len(log) + 1, **entry}
            log.append(stored)
            if client_key:
                ids[client_key] = stored["seq"]
            self._expires[contact_id] = time.monotonic() + retention_s()
            return Appended(stored["seq"], False, stored)

    def _rate_hit(self, rate: RateWindow) -> int:
        """Under the lock: the fixed window of the Redis script, ended counts dropped."""
        now = time.monotonic()
        for key in [k for k, (_, end) in self._rates.items() if end <= now]:
            del self._rates[key]
        count, end = self._rates.get((rate.scope, rate.key), (0, now + rate.window_s))
        self._rates[(rate.scope, rate.key)] = (count + 1, end)
        return count + 1

    async def rate_hit(self, *, rate: RateWindow) -> int:
        with self._lock:
            return self._rate_hit(rate)

    async def since(self, *, contact_id: str, after: int) -> list[dict[str, Any]]:
        with self._lock:
            return list(self._log.get(contact_id, [])[max(after, 0) :])

    async def last_seq(self, *, contact_id: str) -> int:
        with self._lock:
            return len(self._log.get(contact_id, []))

    async def conversation_delete(self, *, contact_id: str) -> None:
        with self._lock:
            self._drop(contact_id)

    async def deadline_set(self, *, name: str, contact_id: str, at: float) -> None:
        with self._lock:
            self._due.setdefault(name, {})[contact_id] = at

    async def deadline_clear(self, *, name: str, contact_id: str) -> None:
        with self._lock:
            self._due.get(name, {}).pop(contact_id, None)

    async def deadlines_claim(self, *, name: str, now: float) -> list[str]:
        with self._lock:
            table = self._due.get(name, {})
            due = [cid for cid, at in table.items() if at <= now]
            for cid in due:
                del table[cid]
            return due

    async def volunteer_contacts(self, *, volunteer_id: int) -> set[str]:
        with self._lock:
            return set(self._vol.get(volunteer_id, set()))

    async def volunteer_contact_set(
        self, *, volunteer_id: int, contact_id: str, present: bool
    ) -> None:
        with self._lock:
            contacts = self._vol.setdefault(volunteer_id, set())
            (contacts.add if present else contacts.discard)(contact_id)


async def _local_dispatch(contact_id: str, event: dict[str, Any]) -> None:
    """The memory store's publish: straight to this process's followers."""
    from chat.relay import relay

    await relay().publish(contact_id, event)


_memory_store = MemoryConversationStore()


def conversation_store() -> ConversationStore:
    """Redis when ``REDIS_URL`` is set (``CHAT_STORE`` may override), else memory."""
    kind = getattr(settings, "CHAT_STORE", "") or ("redis" if settings.REDIS_URL else "memory")
    if kind == "memory":
        return _memory_store
    return RedisConversationStore()
