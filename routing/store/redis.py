"""The Redis store: every state change is ONE Lua script (``routing/lua/*.lua``), so any
number of server processes can route over one Redis without double offers.

Each script is the shared prelude ``_lib.lua`` plus its own body, registered with
redis-py's ``register_script`` (EVALSHA, reloaded on NOSCRIPT). ``ARGV[1]`` is the key
prefix (``settings.ROUTING_REDIS_PREFIX``); keys are listed in docs/ROUTING.md. Refusals
come back as ``REFUSED <code> <detail>`` error replies, raised before any write.
"""

from __future__ import annotations

import json
import math
import secrets
from collections.abc import Sequence
from importlib import resources
from typing import Any

import redis.asyncio as aioredis
from redis.commands.core import AsyncScript
from redis.exceptions import ResponseError

from listenline.redis_pool import blocking_client
from routing.errors import TransitionRefused
from routing.policy import CHANNELS, QueueSpec
from routing.store.base import (
    HANDLE_SAMPLES,
    BranchCounts,
    ContactMatch,
    ContactState,
    DropResult,
    ExpiredOffer,
    Matched,
    Offer,
    PresenceChange,
    QueueFacts,
    QueueHead,
    RoutingStore,
    VolunteerMatch,
    VolunteerState,
)

SCRIPTS = (
    "volunteer_upsert",
    "presence_set",
    "volunteer_disconnect",
    "volunteer_reconnect",
    "drop_expire",
    "contact_enqueue",
    "match_contact",
    "match_volunteer",
    "offer_accept",
    "offer_decline",
    "offer_expire",
    "contact_end",
    "contact_wrapup_done",
    "contact_abandon",
    "contact_requeue",
    "fair_use_key",
    "fair_use_hit",
    "queue_heads",
    "queue_view",
    "queue_views",
    "branch_counts",
)


#: The scripts that may end in offers get the matching prelude too (only they pay for it).
MATCHING = frozenset(
    {"contact_enqueue", "presence_set", "contact_wrapup_done", "match_contact", "match_volunteer"}
)


def script_source(name: str) -> str:
    """The shared prelude (bookkeeping), the matching one where needed, and the body."""
    lua = resources.files("routing") / "lua"
    parts = ("_lib.lua", *(("_match.lua",) if name in MATCHING else ()), f"{name}.lua")
    return "\n".join((lua / part).read_text("utf-8") for part in parts)


def _f(x: float) -> str:
    return repr(float(x))


def _cut(x: float) -> str | None:
    """A score cutoff for a script: None (JSON null) is +inf."""
    return None if math.isinf(x) else _f(x)


def _pairs(flat: Sequence[Any]) -> dict[str, str]:
    return {str(flat[i]): str(flat[i + 1]) for i in range(0, len(flat), 2)}


def _offer(raw: Sequence[Any] | None) -> Offer | None:
    if not raw:
        return None
    cid, vid, ch, home, vbranch, expires, requeued = (str(x) for x in raw)
    return Offer(cid, vid, ch, home, vbranch, float(expires), requeued == "1")


def _matched(raw: Sequence[Any]) -> Matched | None:
    """A script's ``{branch, stale, offer...}`` (``{}``: unknown volunteer)."""
    if not raw:
        return None
    branch, stale, *offers = raw
    made = tuple(o for o in map(_offer, offers) if o is not None)
    return Matched(str(branch), made, str(stale) == "1")


def _facts(raw: Sequence[Any] | None) -> QueueFacts | None:
    if not raw:
        return None
    state, ch, ahead, cap, enq, *samples = raw
    mean = sum(map(float, samples)) / len(samples) if samples else None
    return QueueFacts(str(state), str(ch), int(ahead), int(cap), mean, float(enq))


def _tiers(tiers: Sequence[Sequence[str]] | None) -> str:
    return "" if tiers is None else json.dumps([list(t) for t in tiers])


class RedisStore(RoutingStore):
    def __init__(self, client: aioredis.Redis, *, prefix: str) -> None:
        self.client = client
        self.prefix = prefix
        self._scripts: dict[str, AsyncScript] = {
            name: client.register_script(script_source(name)) for name in SCRIPTS
        }
        # JSON of the queue lists the engine caches (the same object each time), by id
        self._encoded: dict[int, tuple[Sequence[QueueSpec], str]] = {}

    def _queues_json(self, queues: Sequence[QueueSpec]) -> str:
        hit = self._encoded.get(id(queues))
        if hit is not None and hit[0] is queues:
            return hit[1]
        text = json.dumps(
            [
                [q.tier, q.branch, q.channel, _cut(q.cutoff)]
                + ([] if q.unstaffed_cutoff is None else [_cut(q.unstaffed_cutoff)])
                for q in queues
            ]
        )
        # only lists without cutoffs are kept: those with cutoffs (strict rings) move with
        # the clock and are built anew for every decision
        if all(math.isinf(q.cutoff) and q.unstaffed_cutoff is None for q in queues):
            if len(self._encoded) > 4096:
                self._encoded.clear()
            self._encoded[id(queues)] = (queues, text)
        return text

    def _match_args(self, match: VolunteerMatch | None) -> list[str]:
        if match is None:
            return []
        return [
            match.branch,
            self._queues_json(match.queues),
            _f(match.cap_cutoff),
            _f(match.offer_timeout_s),
        ]

    @classmethod
    def from_url(cls, url: str, *, prefix: str) -> RedisStore:
        """A store whose client waits for a free pooled connection (never fails a burst)."""
        return cls(blocking_client(url, decode_responses=True), prefix=prefix)

    async def _run(self, name: str, *args: Any) -> Any:
        try:
            return await self._scripts[name](keys=[], args=[self.prefix, *args])
        except ResponseError as exc:
            text = str(exc)
            if text.startswith("REFUSED "):
                _, code, *rest = text.split(" ", 2)
                raise TransitionRefused(code, rest[0] if rest else "") from None
            raise

    async def close(self) -> None:
        await self.client.aclose()

    # --- volunteers -------------------------------------------------------------------
    async def volunteer_upsert(
        self,
        *,
        volunteer_id: str,
        branch: str,
        channels: Sequence[str],
        chat_limit: int,
        now: float,
    ) -> None:
        await self._run(
            "volunteer_upsert",
            volunteer_id,
            branch,
            ",".join(sorted(channels)),
            chat_limit,
            _f(now),
        )

    async def presence_set(
        self,
        *,
        volunteer_id: str,
        channels: Sequence[str] | None,
        state: str,
        now: float,
        match: VolunteerMatch | None = None,
    ) -> PresenceChange:
        changed, branch, matched = await self._run(
            "presence_set",
            volunteer_id,
            "" if channels is None else ",".join(channels),
            state,
            _f(now),
            *self._match_args(match),
        )
        return PresenceChange(
            {str(ch): state for ch in changed},
            str(branch),
            None if match is None else _matched(matched),
        )

    async def volunteer_disconnect(
        self, *, volunteer_id: str, now: float, grace_s: float
    ) -> list[str]:
        got = await self._run("volunteer_disconnect", volunteer_id, _f(now), _f(grace_s))
        return [str(x) for x in got]

    async def volunteer_reconnect(self, *, volunteer_id: str, now: float) -> bool:
        return bool(await self._run("volunteer_reconnect", volunteer_id, _f(now)))

    async def drop_expire(self, *, volunteer_id: str, now: float) -> DropResult | None:
        got = await self._run("drop_expire", volunteer_id, _f(now))
        if not got:
            return None
        requeued, closed = got
        states = tuple(ContactState.from_fields(str(f[0]), _pairs(f[1:])) for f in closed)
        return DropResult(volunteer_id, tuple(str(x) for x in requeued), states)

    # --- contacts ---------------------------------------------------------------------
    async def contact_enqueue(
        self,
        *,
        contact_id: str,
        channel: str,
        home: str,
        municipality: str,
        now: float,
        match: ContactMatch | None = None,
    ) -> Offer | None:
        extra = (
            []
            if match is None
            else [_tiers(match.tiers), _tiers(match.unstaffed_tiers), _f(match.offer_timeout_s)]
        )
        raw = await self._run(
            "contact_enqueue", contact_id, channel, home, municipality, _f(now), *extra
        )
        return _offer(raw)

    async def match_contact(
        self,
        *,
        contact_id: str,
        tiers: Sequence[Sequence[str]],
        now: float,
        offer_timeout_s: float,
        avoid: Sequence[str] = (),
        unstaffed_tiers: Sequence[Sequence[str]] | None = None,
    ) -> Offer | None:
        raw = await self._run(
            "match_contact",
            contact_id,
            _tiers(tiers),
            _f(now),
            _f(offer_timeout_s),
            json.dumps(list(avoid)),
            _tiers(unstaffed_tiers),
        )
        return _offer(raw)

    async def match_volunteer(
        self, *, volunteer_id: str, match: VolunteerMatch, now: float
    ) -> Matched | None:
        args = self._match_args(match)
        raw = await self._run(
            "match_volunteer", volunteer_id, args[0], args[1], args[2], _f(now), args[3]
        )
        return _matched(raw)

    async def offer_accept(self, *, contact_id: str, volunteer_id: str, now: float) -> ContactState:
        raw = await self._run("offer_accept", contact_id, volunteer_id, _f(now))
        return ContactState.from_fields(contact_id, _pairs(raw))

    async def offer_decline(self, *, contact_id: str, volunteer_id: str, now: float) -> None:
        await self._run("offer_decline", contact_id, volunteer_id, _f(now))

    async def offer_expire(
        self, *, contact_id: str, now: float, missed_to_pause: int, volunteer_id: str = ""
    ) -> ExpiredOffer | None:
        raw = await self._run("offer_expire", contact_id, _f(now), missed_to_pause, volunteer_id)
        if not raw:
            return None
        cid, vid, ch, paused = (str(x) for x in raw)
        return ExpiredOffer(cid, vid, ch, paused == "1")

    async def contact_end(self, *, contact_id: str, now: float) -> ContactState:
        raw = await self._run("contact_end", contact_id, _f(now))
        return ContactState.from_fields(contact_id, _pairs(raw))

    async def contact_wrapup_done(
        self,
        *,
        contact_id: str,
        volunteer_id: str,
        now: float,
        match: VolunteerMatch | None = None,
    ) -> tuple[ContactState, Matched | None]:
        final, matched = await self._run(
            "contact_wrapup_done",
            contact_id,
            volunteer_id,
            _f(now),
            HANDLE_SAMPLES,
            *self._match_args(match),
        )
        state = ContactState.from_fields(contact_id, _pairs(final))
        return state, None if match is None else _matched(matched)

    async def contact_abandon(self, *, contact_id: str, now: float) -> ContactState:
        raw = await self._run("contact_abandon", contact_id, _f(now))
        return ContactState.from_fields(contact_id, _pairs(raw))

    async def contact_requeue(self, *, contact_id: str, now: float) -> tuple[ContactState, str]:
        released, raw = await self._run("contact_requeue", contact_id, _f(now))
        return ContactState.from_fields(contact_id, _pairs(raw)), str(released)

    # --- time-based and reads ---------------------------------------------------------
    async def due_offers(self, *, now: float) -> list[str]:
        return [
            str(x)
            for x in await self.client.zrangebyscore(f"{self.prefix}:offers", "-inf", _f(now))
        ]

    async def due_drops(self, *, now: float) -> list[str]:
        return [
            str(x) for x in await self.client.zrangebyscore(f"{self.prefix}:drops", "-inf", _f(now))
        ]

    async def queue_heads(self) -> list[QueueHead]:
        raw = await self._run("queue_heads")
        heads = [QueueHead(str(b), str(ch), str(cid), float(s)) for b, ch, cid, s in raw]
        return sorted(heads, key=lambda h: (h.branch, h.channel))

    async def free_volunteers(self) -> list[str]:
        return sorted(str(x) for x in await self.client.smembers(f"{self.prefix}:freeall"))

    async def contact_get(self, *, contact_id: str) -> ContactState | None:
        raw = await self.client.hgetall(f"{self.prefix}:c:{contact_id}")
        return (
            ContactState.from_fields(contact_id, _pairs([x for kv in raw.items() for x in kv]))
            if raw
            else None
        )

    async def volunteer_get(self, *, volunteer_id: str) -> VolunteerState | None:
        async with self.client.pipeline(transaction=True) as pipe:
            pipe.hgetall(f"{self.prefix}:v:{volunteer_id}")
            pipe.smembers(f"{self.prefix}:vc:{volunteer_id}")
            v, contacts = await pipe.execute()
        if not v:
            return None
        return VolunteerState(
            volunteer_id,
            v["branch"],
            tuple(ch for ch in v["channels"].split(",") if ch),
            int(v["chat_limit"]),
            {ch: v[f"p_{ch}"] for ch in CHANNELS},
            int(v["l_phone"]),
            int(v["l_chat"]),
            int(v["missed"]),
            float(v["idle_since"]),
            float(v["disconnected_at"]),
            tuple(sorted(contacts)),
        )

    async def staffed(self, *, branches: Sequence[str], channel: str) -> dict[str, bool]:
        async with self.client.pipeline(transaction=False) as pipe:
            for b in branches:
                pipe.scard(f"{self.prefix}:duty:{b}:{channel}")
            counts = await pipe.execute()
        return {b: n > 0 for b, n in zip(branches, counts, strict=True)}

    async def queue_view(self, *, contact_id: str) -> QueueFacts | None:
        return _facts(await self._run("queue_view", contact_id))

    async def queue_views(
        self, *, contact_ids: Sequence[str], batch: int = 500
    ) -> dict[str, QueueFacts | None]:
        """One script per ``batch`` contacts; the per-channel facts are read once each."""
        facts: dict[str, QueueFacts | None] = {}
        for start in range(0, len(contact_ids), batch):
            chunk = list(contact_ids[start : start + batch])
            raw = await self._run("queue_views", *chunk)
            channels = {
                str(ch): (int(cap), float(mean) if mean else None)
                for ch, cap, mean in raw[: len(CHANNELS)]
            }
            for cid, row in zip(chunk, raw[len(CHANNELS) :], strict=True):
                if not row:
                    facts[cid] = None
                    continue
                state, ch, ahead, enqueued = (str(x) for x in row)
                cap, mean = channels[ch]
                facts[cid] = QueueFacts(state, ch, int(ahead), cap, mean, float(enqueued))
        return facts

    async def branch_counts(self, *, branch: str | None) -> BranchCounts:
        waiting, oldest, on_duty, busy, paused = await self._run("branch_counts", branch or "")
        return BranchCounts(
            int(waiting), float(oldest) if oldest else None, int(on_duty), int(busy), int(paused)
        )

    # --- fair use -----------------------------------------------------------------------
    async def fair_use_key(self, *, key_id: str, ttl_s: int) -> bytes:
        got = await self._run("fair_use_key", key_id, ttl_s, secrets.token_hex(32))
        return bytes.fromhex(str(got))

    async def fair_use_hit(self, *, counter_id: str, limit: int, ttl_s: int) -> int:
        return int(await self._run("fair_use_hit", counter_id, limit, ttl_s))

    # --- maintenance ----------------------------------------------------------------------
    async def _keys(self) -> list[str]:
        return sorted([k async for k in self.client.scan_iter(match=f"{self.prefix}:*", count=500)])

    async def dump(self) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for key in await self._keys():
            kind = await self.client.type(key)
            if kind == "hash":
                out[key] = dict(sorted((await self.client.hgetall(key)).items()))
            elif kind == "zset":
                out[key] = await self.client.zrange(key, 0, -1, withscores=True)
            elif kind == "set":
                out[key] = sorted(await self.client.smembers(key))
            elif kind == "list":
                out[key] = await self.client.lrange(key, 0, -1)
            else:
                out[key] = await self.client.get(key)
        return out

    async def clear(self) -> None:
        keys = await self._keys()
        for i in range(0, len(keys), 500):
            await self.client.delete(*keys[i : i + 500])
