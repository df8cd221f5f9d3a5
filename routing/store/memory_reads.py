"""The in-process store's reads: time-based scans, snapshots, fair-use counters, dump.

Each read is one critical section, so it sees a consistent state.
"""

from __future__ import annotations

import copy
import secrets
import time
from collections.abc import Sequence
from typing import Any

from routing.store.base import (
    BranchCounts,
    ContactState,
    QueueFacts,
    QueueHead,
    VolunteerState,
)
from routing.store.memory_state import MemoryState


class MemoryReads(MemoryState):
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
