"""The in-process store's state and its bookkeeping, shared by its reads and changes.

Plain dicts and sets under one re-entrant lock; every helper here expects the lock to be
held and never awaits. Mirrors ``routing/lua/_lib.lua`` rule for rule: free volunteers
ranked ``load × 10¹⁰ + idle_since`` (least loaded, then idle longest), waiting queues by
score (enqueue time; re-queued contacts ``enqueued_at − 10¹⁰``).
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from typing import Any

from routing.errors import TransitionRefused
from routing.policy import ANY, CHANNELS, REQUEUE_HEAD, QueueSpec
from routing.store.base import ContactState, Matched, Offer, RoutingStore, VolunteerMatch

LOAD_WEIGHT = 1e10
Key = tuple[str, str]


class MemoryState(RoutingStore):
    """State and helpers; abstract (the store's methods live in its subclasses)."""

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

    def _cutoff(self, q: QueueSpec) -> float:
        """The queue's cutoff given who is on duty now (strict rings)."""
        if q.unstaffed_cutoff is not None and not self._duty.get((q.branch, q.channel)):
            return q.unstaffed_cutoff
        return q.cutoff

    def _head(self, branch: str, ch: str, cutoff: float) -> tuple[float, str] | None:
        if branch == ANY:
            queues = [q for (_, qch), q in self._queues.items() if qch == ch]
        else:
            queues = [self._queues.get((branch, ch)) or {}]
        return min(
            ((s, cid) for queue in queues for cid, s in queue.items() if s <= cutoff),
            default=None,
        )

    def _best_free(self, tier: Sequence[str], ch: str, skip: set[str]) -> tuple[float, str] | None:
        if list(tier) == [ANY]:
            pools = [free for (_, fch), free in self._free.items() if fch == ch]
        else:
            pools = [self._free.get((branch, ch), {}) for branch in tier]
        best = None
        for free in pools:
            for vid, score in free.items():
                if vid not in skip and (best is None or (score, vid) < best):
                    best = (score, vid)
        return best

    def _match_contact(
        self,
        c: dict[str, Any],
        tiers: Sequence[Sequence[str]],
        unstaffed: Sequence[Sequence[str]] | None,
        avoid: Sequence[str],
        now: float,
        timeout: float,
    ) -> Offer | None:
        """Mirrors ``match_contact`` in ``_match.lua``."""
        if unstaffed is not None and not self._duty.get((c["home"], c["channel"])):
            tiers = unstaffed
        skips = [{c["declined_by"], *avoid}]
        if c["declined_by"]:
            skips.append(set(avoid))
        for skip in skips:
            for tier in tiers:
                best = self._best_free(tier, c["channel"], skip)
                if best is not None:
                    return self._offer(c, best[1], now, timeout)
        return None

    def _match_volunteer_once(self, vid: str, match: VolunteerMatch, now: float) -> Offer | None:
        """Mirrors ``match_volunteer_once`` in ``_match.lua``."""
        v = self._vols[vid]
        free = {ch for ch in CHANNELS if self._is_free(v, ch)}
        specs = [(q, self._cutoff(q)) for q in match.queues if q.channel in free]
        best: tuple[float, str] | None = None
        for q, cutoff in specs:
            head = self._head(q.branch, q.channel, min(cutoff, match.cap_cutoff))
            if head is not None and (best is None or head < best):
                best = head
        if best is None:
            for tier in sorted({q.tier for q, _ in specs}):
                for q, cutoff in specs:
                    if q.tier == tier:
                        head = self._head(q.branch, q.channel, cutoff)
                        if head is not None and (best is None or head < best):
                            best = head
                if best is not None:
                    break
        if best is None:
            return None
        return self._offer(self._contacts[best[1]], vid, now, match.offer_timeout_s)

    def _match_volunteer(self, vid: str, match: VolunteerMatch, now: float) -> Matched | None:
        """Mirrors ``match_volunteer`` in ``_match.lua``."""
        v = self._vols.get(vid)
        if v is None:
            return None
        if v["branch"] != match.branch:
            return Matched(v["branch"], stale=True)
        offers = []
        for _ in range(v["chat_limit"] + 1):
            offer = self._match_volunteer_once(vid, match, now)
            if offer is None:
                break
            offers.append(offer)
        return Matched(v["branch"], tuple(offers))

    def _offered_to(self, contact_id: str, volunteer_id: str) -> dict[str, Any]:
        c = self._contact(contact_id)
        if c["state"] != "offered" or c["offered_to"] != volunteer_id:
            raise TransitionRefused("not_your_offer", contact_id)
        return c
