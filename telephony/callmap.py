"""Live call state: which Twilio call leg belongs to which contact, while calls live.

CallSids are Twilio's ids, not caller identifiers; contact and volunteer ids are ours.
Nothing else is kept: never a phone number, city or name. Every key expires after a day
and is deleted as soon as its call leg has ended.

* ``<prefix>:call:<CallSid>`` → ``{"c": contact id, "r": caller|volunteer|crisis,
  "v": volunteer id}``; taken (GETDEL) by the first terminal status callback, so a
  repeated or late callback finds nothing and changes nothing.
* ``<prefix>:contact:<contact id>`` → a hash: ``caller`` (CallSid), ``dialled`` (the
  line's own number the caller dialled: our caller id for call-outs), ``home_name``,
  ``leg:<volunteer id>`` (CallSid of a call-out), ``crisis`` (CallSid), ``handover``,
  ``ending``.

Redis in production and tests; a dict in the embedded demo (one process).
"""

from __future__ import annotations

import asyncio
import json
import time
import weakref
from typing import Any

from django.conf import settings

TTL_S = 24 * 3600
TOMBSTONE = '{"r": "over"}'
TOMBSTONE_TTL_S = 3600
_clients: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, Any] = weakref.WeakKeyDictionary()
_memory: dict[str, tuple[float, Any]] = {}


def prefix() -> str:
    return getattr(settings, "TELEPHONY_REDIS_PREFIX", "") or f"{settings.ROUTING_REDIS_PREFIX}:tel"


def _redis() -> Any | None:
    if not settings.REDIS_URL:
        return None
    from listenline.redis_pool import blocking_client

    loop = asyncio.get_running_loop()  # a client belongs to one loop (tests make many)
    client = _clients.get(loop)
    if client is None:
        client = _clients[loop] = blocking_client(settings.REDIS_URL, decode_responses=True)
    return client


def _call_key(call_sid: str) -> str:
    return f"{prefix()}:call:{call_sid}"


def _contact_key(contact_id: str) -> str:
    return f"{prefix()}:contact:{contact_id}"


def _mem_get(key: str) -> Any:
    item = _memory.get(key)
    if item is None or item[0] < time.monotonic():
        _memory.pop(key, None)
        return None
    return item[1]


async def call_claim(call_sid: str, entry: dict[str, str]) -> bool:
    """Record a leg if it is new; False when this CallSid is already known (a retry)."""
    value = json.dumps(entry, sort_keys=True)
    r = _redis()
    if r is None:
        if _mem_get(_call_key(call_sid)) is not None:
            return False
        _memory[_call_key(call_sid)] = (time.monotonic() + TTL_S, value)
        return True
    return bool(await r.set(_call_key(call_sid), value, nx=True, ex=TTL_S))


async def caller_record(call_sid: str, contact_id: str, **fields: str) -> bool:
    """A new caller's leg and its contact, in one round trip: the leg (``{"r": "caller",
    "c": contact_id}``) if this CallSid is new, and the contact's ``fields``. False, and
    the contact hash removed again, when the CallSid is already known (a retry)."""
    value = json.dumps({"c": contact_id, "r": "caller"}, sort_keys=True)
    r = _redis()
    if r is None:
        if not await call_claim(call_sid, {"c": contact_id, "r": "caller"}):
            return False
        await contact_set(contact_id, **fields)
        return True
    key = _contact_key(contact_id)
    async with r.pipeline(transaction=False) as pipe:
        pipe.set(_call_key(call_sid), value, nx=True, ex=TTL_S)
        pipe.hset(key, mapping=fields)
        pipe.expire(key, TTL_S)
        claimed, _, _ = await pipe.execute()
    if not claimed:
        await r.delete(key)
    return bool(claimed)


async def call_put(call_sid: str, entry: dict[str, str]) -> None:
    value = json.dumps(entry, sort_keys=True)
    r = _redis()
    if r is None:
        _memory[_call_key(call_sid)] = (time.monotonic() + TTL_S, value)
    else:
        await r.set(_call_key(call_sid), value, ex=TTL_S)


async def call_get(call_sid: str) -> dict[str, str] | None:
    r = _redis()
    raw = _mem_get(_call_key(call_sid)) if r is None else await r.get(_call_key(call_sid))
    return json.loads(raw) if raw else None


async def call_take(call_sid: str) -> dict[str, str] | None:
    """Atomically end a leg: only the first caller gets its entry; a tombstone (no
    contact, one hour) remains so a late duplicate of any webhook finds the call over."""
    r = _redis()
    key = _call_key(call_sid)
    if r is None:
        raw = _mem_get(key)
        if raw is not None:
            _memory[key] = (time.monotonic() + TOMBSTONE_TTL_S, TOMBSTONE)
    else:
        raw = await r.set(key, TOMBSTONE, xx=True, get=True, ex=TOMBSTONE_TTL_S)
    if not raw or raw == TOMBSTONE:
        return None
    return json.loads(raw)


async def contact_set(contact_id: str, **fields: str) -> None:
    r = _redis()
    key = _contact_key(contact_id)
    if r is None:
        current = dict(_mem_get(key) or {})
        current.update(fields)
        _memory[key] = (time.monotonic() + TTL_S, current)
        return
    async with r.pipeline(transaction=True) as pipe:
        pipe.hset(key, mapping=fields)
        pipe.expire(key, TTL_S)
        await pipe.execute()


async def contact_flag(contact_id: str, field: str) -> bool:
    """Set a flag once; True only for the first to set it."""
    r = _redis()
    key = _contact_key(contact_id)
    if r is None:
        current = dict(_mem_get(key) or {})
        if field in current:
            return False
        current[field] = "1"
        _memory[key] = (time.monotonic() + TTL_S, current)
        return True
    return bool(await r.hsetnx(key, field, "1"))


async def contact_get(contact_id: str) -> dict[str, str]:
    r = _redis()
    if r is None:
        return dict(_mem_get(_contact_key(contact_id)) or {})
    return dict(await r.hgetall(_contact_key(contact_id)))


async def contact_unset(contact_id: str, *fields: str) -> None:
    r = _redis()
    key = _contact_key(contact_id)
    if r is None:
        current = dict(_mem_get(key) or {})
        for name in fields:
            current.pop(name, None)
        _memory[key] = (time.monotonic() + TTL_S, current)
        return
    await r.hdel(key, *fields)


async def contact_forget(contact_id: str) -> None:
    r = _redis()
    if r is None:
        _memory.pop(_contact_key(contact_id), None)
    else:
        await r.delete(_contact_key(contact_id))


async def contact_unset_leg(contact_id: str, volunteer_id: str) -> dict[str, str]:
    """Forget a volunteer's leg (and the active mark if it was that leg); the rest remains."""
    info = await contact_get(contact_id)
    sid = info.get(f"leg:{volunteer_id}", "")
    names = [f"leg:{volunteer_id}", f"up:{sid}"]
    if sid and info.get("active") == sid:
        names.append("active")
    await contact_unset(contact_id, *names)
    return await contact_get(contact_id)
