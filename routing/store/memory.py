"""The in-process store for the embedded demo (and the simulator).

Every public method is one critical section under a lock and never awaits inside it, so
concurrent asyncio tasks (and threads) see each change whole. It mirrors the Redis Lua
scripts rule for rule; the contract tests run both.
"""

from __future__ import annotations

import copy
import secrets
import threading
import time
from collections.abc import Sequence
from dataclasses import asdict
from typing import Any

from routing.errors import TransitionRefused
from routing.policy import CHANNELS, REQUEUE_HEAD, QueueSpec
from routing.store.base import (
    HANDLE_SAMPLES,
    BranchCounts,
    ContactState,
    DropResult,
    ExpiredOffer,
    Offer,
    QueueFacts,
    QueueHead,
    RoutingStore,
    VolunteerState,
)

LOAD_WEIGHT = 1e10
Key = tuple[str, str]


class MemoryStore(RoutingStore):
    def __init__(self) -> None:
        self._lock = threading.RLock()
        self.clear_sync()

    def clear_sync(self) -> None:
        with self._lock:
            self._contacts: dict[str, dict[str, Any]] = {}
            self._queues: dict[Key, dict[str, float]] = {}
            self._vols: dict[str, dict[str, Any]] = {}
            self._branch_vols: dict[str, set[str]] = {}
            self._free: dict[Key, dict[str, float]] = {}
            self._duty: dict[Key, set[str]] = {}
            self._offers: dict[str, float] = {}
            self._drops: dict[str, float] = {}
            self._handle: dict[str, list[float]] = {}
            self._fu_keys: dict[str, tuple[bytes, float]] = {}
            self._fu_counts: dict[str, tuple[int, float]] = {}

    async def clear(self) -> None:
        self.clear_sync()

    # --- helpers (call with the lock held) --------------------------------------------
    def _vol(self, vid: str) -> dict[str, Any]:
        v = self._vols.get(vid)
        if v is None:
            raise TransitionRefused("unknown_volunteer", vid)
        return v

    def _contact(self, cid: str) -> dict[str, Any]:
        c = self._contacts.get(cid)
        if c is None:
            raise TransitionRefused("unknown_contact", cid)
        return c

    def _is_free(self, v: dict[str, Any], ch: str) -> bool:
        if v["disconnected_at"] or ch not in v["channels"] or v["presence"][ch] != "available":
            return False
        if v["load"]["phone"]:
            return False
        return v["load"]["chat"] == 0 if ch == "phone" else v["load"]["chat"] < v["chat_limit"]

    def _refresh(self, vid: str) -> None:
        v = self._vols[vid]
        for ch in CHANNELS:
            key = (v["branch"], ch)
            free = self._free.setdefault(key, {})
            if self._is_free(v, ch):
                free[vid] = v["load"]["chat"] * LOAD_WEIGHT + v["idle_since"]
            else:
                free.pop(vid, None)
            duty = self._duty.setdefault(key, set())
            if ch in v["channels"] and v["presence"][ch] == "available":
                duty.add(vid)
            else:
                duty.discard(vid)

    def _queue(self, c: dict[str, Any]) -> dict[str, float]:
        return self._queues.setdefault((c["home"], c["channel"]), {})

    def _offer(self, c: dict[str, Any], vid: str, now: float, timeout: float) -> Offer:
        v = self._vols[vid]
        cid = c["contact_id"]
        self._queue(c).pop(cid, None)
        c.update(state="offered", offered_to=vid, offer_expires_at=now + timeout)
        self._offers[cid] = now + timeout
        v["load"][c["channel"]] += 1
        v["contacts"].add(cid)
        v["idle_since"] = now
        self._refresh(vid)
        return Offer(
            contact_id=cid,
            volunteer_id=vid,
            channel=c["channel"],
            home=c["home"],
            volunteer_branch=v["branch"],
            expires_at=now + timeout,
            requeued=c["requeues"] > 0,
        )

    def _unload(self, c: dict[str, Any], vid: str, now: float, *, finished: bool) -> None:
        v = self._vols.get(vid)
        if v is None:
            return
        if c["contact_id"] in v["contacts"]:
            v["contacts"].discard(c["contact_id"])
            v["load"][c["channel"]] -= 1
        if finished and not v["contacts"]:
            v["idle_since"] = now
        self._refresh(vid)

    def _back_to_queue(self, c: dict[str, Any], *, head: bool) -> None:
        if head:
            c["score"] = c["enqueued_at"] - REQUEUE_HEAD
            c["requeues"] += 1
        self._offers.pop(c["contact_id"], None)
        c.update(state="waiting", offered_to="", offer_expires_at=0.0)
        self._queue(c)[c["contact_id"]] = c["score"]

    def _withdraw(self, c: dict[str, Any], now: float) -> None:
        self._unload(c, c["offered_to"], now, finished=False)
        self._back_to_queue(c, head=False)

    def _requeue_active(self, c: dict[str, Any], now: float) -> None:
        self._unload(c, c["volunteer"], now, finished=True)
        c["talked_s"] += now - c["answered_at"]
        c.update(volunteer="", volunteer_branch="", answered_at=0.0)
        self._back_to_queue(c, head=True)

    def _delete(self, c: dict[str, Any], **final: Any) -> ContactState:
        c.update(final)
        del self._contacts[c["contact_id"]]
        self._queue(c).pop(c["contact_id"], None)
        self._offers.pop(c["contact_id"], None)
        return self._state(c)

    @staticmethod
    def _state(c: dict[str, Any]) -> ContactState:
        return ContactState(**c)

    def _head(self, branch: str, ch: str, cutoff: float) -> tuple[float, str] | None:
        queue = self._queues.get((branch, ch))
        if not queue:
            return None
        best = min(((s, cid) for cid, s in queue.items() if s <= cutoff), default=None)
        return best

    # --- volunteers -----------------------------------------------------------------
    async def volunteer_upsert(
        self,
        *,
        volunteer_id: str,
        branch: str,
        channels: Sequence[str],
        chat_limit: int,
        now: float,
    ) -> None:
        with self._lock:
            v = self._vols.get(volunteer_id)
            if v is None:
                v = {
                    "branch": branch,
                    "channels": [],
                    "chat_limit": chat_limit,
                    "presence": dict.fromkeys(CHANNELS, "off_duty"),
                    "load": dict.fromkeys(CHANNELS, 0),
                    "missed": 0,
                    "idle_since": now,
                    "disconnected_at": 0.0,
                    "contacts": set(),
                }
                self._vols[volunteer_id] = v
            if v["branch"] != branch:
                for ch in CHANNELS:
                    self._free.get((v["branch"], ch), {}).pop(volunteer_id, None)
                    self._duty.get((v["branch"], ch), set()).discard(volunteer_id)
                self._branch_vols.get(v["branch"], set()).discard(volunteer_id)
            v.update(branch=branch, channels=sorted(channels), chat_limit=chat_limit)
            for ch in CHANNELS:
                if ch not in channels:
                    v["presence"][ch] = "off_duty"
            self._branch_vols.setdefault(branch, set()).add(volunteer_id)
            self._refresh(volunteer_id)

    async def presence_set(
        self, *, volunteer_id: str, channels: Sequence[str], state: str, now: float
    ) -> dict[str, str]:
        with self._lock:
            v = self._vol(volunteer_id)
            for ch in channels:
                if ch not in v["channels"]:
                    raise TransitionRefused("channel_not_taken", ch)
            changed = {ch: state for ch in channels if v["presence"][ch] != state}
            if (
                state == "available"
                and changed
                and not any(p == "available" for p in v["presence"].values())
            ):
                v["idle_since"] = now
            if state == "available":
                v["missed"] = 0
            v["presence"].update(changed)
            self._refresh(volunteer_id)
            return changed

    async def volunteer_disconnect(
        self, *, volunteer_id: str, now: float, grace_s: float
    ) -> list[str]:
        with self._lock:
            v = self._vol(volunteer_id)
            if v["disconnected_at"]:
                return []
            v["disconnected_at"] = now
            self._drops[volunteer_id] = now + grace_s
            withdrawn = []
            for cid in sorted(v["contacts"]):
                c = self._contacts[cid]
                if c["state"] == "offered":
                    self._withdraw(c, now)
                    withdrawn.append(cid)
            self._refresh(volunteer_id)
            return withdrawn

    async def volunteer_reconnect(self, *, volunteer_id: str, now: float) -> bool:
        with self._lock:
            v = self._vol(volunteer_id)
            if not v["disconnected_at"]:
                return False
            v["disconnected_at"] = 0.0
            self._drops.pop(volunteer_id, None)
            self._refresh(volunteer_id)
            return True

    async def drop_expire(self, *, volunteer_id: str, now: float) -> DropResult | None:
        with self._lock:
            deadline = self._drops.get(volunteer_id)
            if deadline is None or deadline > now or volunteer_id not in self._vols:
                return None
            v = self._vols[volunteer_id]
            requeued, closed = [], []
            for cid in sorted(v["contacts"]):
                c = self._contacts[cid]
                if c["state"] == "offered":
                    self._withdraw(c, now)
                elif c["state"] == "active":
                    self._requeue_active(c, now)
                    requeued.append(cid)
                else:  # wrap_up: the caller is gone already; close without a registration
                    self._unload(c, volunteer_id, now, finished=True)
                    closed.append(self._delete(c, state="closed"))
            del self._drops[volunteer_id]
            v.update(disconnected_at=0.0, missed=0)
            v["presence"] = dict.fromkeys(CHANNELS, "off_duty")
            self._refresh(volunteer_id)
            return DropResult(volunteer_id, tuple(requeued), tuple(closed))

    # --- contacts ---------------------------------------------------------------------
    async def contact_enqueue(
        self, *, contact_id: str, channel: str, home: str, municipality: str, now: float
    ) -> None:
        with self._lock:
            if contact_id in self._contacts:
                raise TransitionRefused("contact_closed", "id already in use")
            c = asdict(ContactState(contact_id, "waiting", channel, home, municipality, now, now))
            self._contacts[contact_id] = c
            self._queue(c)[contact_id] = now

    def _best_free(self, tier: Sequence[str], ch: str, skip: str) -> tuple[float, str] | None:
        best = None
        for branch in tier:
            for vid, score in self._free.get((branch, ch), {}).items():
                if vid != skip and (best is None or (score, vid) < best):
                    best = (score, vid)
        return best

    async def match_contact(
        self,
        *,
        contact_id: str,
        tiers: Sequence[Sequence[str]],
        now: float,
        offer_timeout_s: float,
    ) -> Offer | None:
        with self._lock:
            c = self._contacts.get(contact_id)
            if c is None or c["state"] != "waiting":
                return None
            skips = [c["declined_by"], ""] if c["declined_by"] else [""]
            for skip in skips:
                for tier in tiers:
                    best = self._best_free(tier, c["channel"], skip)
                    if best is not None:
                        return self._offer(c, best[1], now, offer_timeout_s)
            return None

    async def match_volunteer(
        self,
        *,
        volunteer_id: str,
        queues: Sequence[QueueSpec],
        cap_cutoff: float,
        now: float,
        offer_timeout_s: float,
    ) -> Offer | None:
        with self._lock:
            v = self._vols.get(volunteer_id)
            if v is None:
                return None
            free = {ch for ch in CHANNELS if self._is_free(v, ch)}
            specs = [q for q in queues if q.channel in free]
            best: tuple[float, str] | None = None
            for q in specs:
                head = self._head(q.branch, q.channel, min(q.cutoff, cap_cutoff))
                if head is not None and (best is None or head < best):
                    best = head
            if best is None:
                for tier in sorted({q.tier for q in specs}):
                    for q in specs:
                        if q.tier == tier:
                            head = self._head(q.branch, q.channel, q.cutoff)
                            if head is not None and (best is None or head < best):
                                best = head
                    if best is not None:
                        break
            if best is None:
                return None
            return self._offer(self._contacts[best[1]], volunteer_id, now, offer_timeout_s)

    def _offered_to(self, contact_id: str, volunteer_id: str) -> dict[str, Any]:
        c = self._contact(contact_id)
        if c["state"] != "offered" or c["offered_to"] != volunteer_id:
            raise TransitionRefused("not_your_offer", contact_id)
        return c

    async def offer_accept(self, *, contact_id: str, volunteer_id: str, now: float) -> ContactState:
        with self._lock:
            c = self._offered_to(contact_id, volunteer_id)
            if now >= c["offer_expires_at"]:
                raise TransitionRefused("offer_expired", contact_id)
            v = self._vols[volunteer_id]
            self._offers.pop(contact_id, None)
            if c["waited_s"] < 0:
                c["waited_s"] = now - c["enqueued_at"]
            c.update(
                state="active",
                offered_to="",
                offer_expires_at=0.0,
                volunteer=volunteer_id,
                volunteer_branch=v["branch"],
                answered_at=now,
            )
            v["missed"] = 0
            return self._state(c)

    async def offer_decline(self, *, contact_id: str, volunteer_id: str, now: float) -> None:
        with self._lock:
            c = self._offered_to(contact_id, volunteer_id)
            self._withdraw(c, now)
            c["declined_by"] = volunteer_id

    async def offer_expire(
        self, *, contact_id: str, now: float, missed_to_pause: int
    ) -> ExpiredOffer | None:
        with self._lock:
            c = self._contacts.get(contact_id)
            if c is None or c["state"] != "offered" or c["offer_expires_at"] > now:
                return None
            vid = c["offered_to"]
            self._withdraw(c, now)
            c["declined_by"] = vid
            v = self._vols.get(vid)
            paused = False
            if v is not None:
                v["missed"] += 1
                if v["missed"] >= missed_to_pause:
                    paused = True
                    for ch in CHANNELS:
                        if v["presence"][ch] == "available":
                            v["presence"][ch] = "paused"
                    self._refresh(vid)
            return ExpiredOffer(contact_id, vid, c["channel"], paused)

    async def contact_end(self, *, contact_id: str, now: float) -> ContactState:
        with self._lock:
            c = self._contact(contact_id)
            if c["state"] == "wrap_up":
                raise TransitionRefused("contact_closed", contact_id)
            if c["state"] != "active":
                raise TransitionRefused("not_active", contact_id)
            c["talked_s"] += now - c["answered_at"]
            c.update(state="wrap_up", ended_at=now)
            return self._state(c)

    async def contact_wrapup_done(
        self, *, contact_id: str, volunteer_id: str, now: float
    ) -> ContactState:
        with self._lock:
            c = self._contact(contact_id)
            if c["state"] != "wrap_up" or c["volunteer"] != volunteer_id:
                raise TransitionRefused("not_in_wrap_up", contact_id)
            samples = self._handle.setdefault(c["channel"], [])
            samples.insert(0, now - c["answered_at"])
            del samples[HANDLE_SAMPLES:]
            self._unload(c, volunteer_id, now, finished=True)
            return self._delete(c, state="closed")

    async def contact_abandon(self, *, contact_id: str, now: float) -> ContactState:
        with self._lock:
            c = self._contact(contact_id)
            if c["state"] == "wrap_up":
                raise TransitionRefused("contact_closed", contact_id)
            if c["state"] == "active":
                c["talked_s"] += now - c["answered_at"]
                c.update(state="wrap_up", ended_at=now)
                return self._state(c)
            if c["state"] == "offered":
                self._unload(c, c["offered_to"], now, finished=False)
            return self._delete(c, state="abandoned", ended_at=now)

    async def contact_requeue(self, *, contact_id: str, now: float) -> tuple[ContactState, str]:
        with self._lock:
            c = self._contact(contact_id)
            if c["state"] == "wrap_up":
                raise TransitionRefused("contact_closed", contact_id)
            if c["state"] == "waiting":
                raise TransitionRefused("not_active", contact_id)
            if c["state"] == "offered":
                released = c["offered_to"]
                self._unload(c, released, now, finished=False)
                self._back_to_queue(c, head=True)
            else:
                released = c["volunteer"]
                self._requeue_active(c, now)
            return self._state(c), released

    # --- time-based and reads -------------------------------------------------------------
    async def due_offers(self, *, now: float) -> list[str]:
        with self._lock:
            return [cid for cid, t in sorted(self._offers.items(), key=lambda i: i[1]) if t <= now]

    async def due_drops(self, *, now: float) -> list[str]:
        with self._lock:
            return [vid for vid, t in sorted(self._drops.items(), key=lambda i: i[1]) if t <= now]

    async def queue_heads(self) -> list[QueueHead]:
        with self._lock:
            heads = []
            for (branch, ch), queue in sorted(self._queues.items()):
                if queue:
                    score, cid = min((s, c) for c, s in queue.items())
                    heads.append(QueueHead(branch, ch, cid, score))
            return heads

    async def free_volunteers(self) -> list[str]:
        with self._lock:
            return sorted({vid for free in self._free.values() for vid in free})

    async def contact_get(self, *, contact_id: str) -> ContactState | None:
        with self._lock:
            c = self._contacts.get(contact_id)
            return None if c is None else self._state(c)

    async def volunteer_get(self, *, volunteer_id: str) -> VolunteerState | None:
        with self._lock:
            v = self._vols.get(volunteer_id)
            if v is None:
                return None
            return VolunteerState(
                volunteer_id,
                v["branch"],
                tuple(v["channels"]),
                v["chat_limit"],
                dict(v["presence"]),
                v["load"]["phone"],
                v["load"]["chat"],
                v["missed"],
                v["idle_since"],
                v["disconnected_at"],
                tuple(sorted(v["contacts"])),
            )

    async def staffed(self, *, branches: Sequence[str], channel: str) -> dict[str, bool]:
        with self._lock:
            return {b: bool(self._duty.get((b, channel))) for b in branches}

    async def queue_view(self, *, contact_id: str) -> QueueFacts | None:
        with self._lock:
            c = self._contacts.get(contact_id)
            if c is None:
                return None
            ch = c["channel"]
            ahead = 0
            if c["state"] == "waiting":
                me = (c["score"], contact_id)
                for (_, qch), queue in self._queues.items():
                    if qch == ch:
                        ahead += sum(1 for cid, s in queue.items() if (s, cid) < me)
            capacity = 0
            for (_, dch), duty in self._duty.items():
                if dch == ch:
                    capacity += sum(
                        self._vols[v]["chat_limit"] if ch == "chat" else 1 for v in duty
                    )
            samples = self._handle.get(ch) or []
            mean = sum(samples) / len(samples) if samples else None
            return QueueFacts(c["state"], ch, ahead, capacity, mean, c["enqueued_at"])

    async def branch_counts(self, *, branch: str | None) -> BranchCounts:
        with self._lock:
            waiting = [
                self._contacts[cid]["enqueued_at"]
                for (b, _), queue in self._queues.items()
                if branch is None or b == branch
                for cid in queue
            ]
            vids = self._vols if branch is None else self._branch_vols.get(branch, set())
            on_duty = busy = paused = 0
            for vid in vids:
                v = self._vols[vid]
                states = set(v["presence"].values())
                if "available" in states:
                    on_duty += 1
                elif "paused" in states:
                    paused += 1
                busy += 1 if v["contacts"] else 0
            return BranchCounts(len(waiting), min(waiting, default=None), on_duty, busy, paused)

    # --- fair use ---------------------------------------------------------------------------
    async def fair_use_key(self, *, key_id: str, ttl_s: int) -> bytes:
        with self._lock:
            now = time.time()
            found = self._fu_keys.get(key_id)
            if found is None or found[1] <= now:
                found = (secrets.token_bytes(32), now + ttl_s)
                self._fu_keys[key_id] = found
            return found[0]

    async def fair_use_hit(self, *, counter_id: str, limit: int, ttl_s: int) -> int:
        with self._lock:
            now = time.time()
            count, expires = self._fu_counts.get(counter_id, (0, now + ttl_s))
            if expires <= now:
                count, expires = 0, now + ttl_s
            if count >= limit:
                return -1
            self._fu_counts[counter_id] = (count + 1, expires)
            return count + 1

    async def dump(self) -> dict[str, Any]:
        with self._lock:
            state = {k: v for k, v in vars(self).items() if k != "_lock"}
            state = copy.deepcopy(state)
            for v in state["_vols"].values():
                v["contacts"] = sorted(v["contacts"])
            state["_branch_vols"] = {b: sorted(s) for b, s in state["_branch_vols"].items() if s}
            state["_duty"] = {f"{k}": sorted(s) for k, s in state["_duty"].items() if s}
            state["_free"] = {f"{k}": f for k, f in state["_free"].items() if f}
            state["_queues"] = {f"{k}": q for k, q in state["_queues"].items() if q}
            return state
