"""The in-process store for the embedded demo (and the simulator).

Every public method is one critical section under a lock and never awaits inside it, so
concurrent asyncio tasks (and threads) see each change whole. It mirrors the Redis Lua
scripts rule for rule; the contract tests run both. The state and its helpers live in
``memory_state.py``, the reads in ``memory_reads.py``; this module holds the changes.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict

from routing.errors import TransitionRefused
from routing.policy import CHANNELS
from routing.store.base import (
    HANDLE_SAMPLES,
    ContactMatch,
    ContactState,
    DropResult,
    ExpiredOffer,
    Matched,
    Offer,
    PresenceChange,
    VolunteerMatch,
)
from routing.store.memory_reads import MemoryReads


class MemoryStore(MemoryReads):
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
        self,
        *,
        volunteer_id: str,
        channels: Sequence[str] | None,
        state: str,
        now: float,
        match: VolunteerMatch | None = None,
    ) -> PresenceChange:
        with self._lock:
            v = self._vol(volunteer_id)
            channels = list(v["channels"]) if channels is None else channels
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
            matched = None if match is None else self._match_volunteer(volunteer_id, match, now)
            return PresenceChange(changed, v["branch"], matched)

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
        self,
        *,
        contact_id: str,
        channel: str,
        home: str,
        municipality: str,
        now: float,
        match: ContactMatch | None = None,
    ) -> Offer | None:
        with self._lock:
            if contact_id in self._contacts:
                raise TransitionRefused("contact_closed", "id already in use")
            c = asdict(ContactState(contact_id, "waiting", channel, home, municipality, now, now))
            self._contacts[contact_id] = c
            self._queue(c)[contact_id] = now
            if match is None:
                return None
            return self._match_contact(
                c, match.tiers, match.unstaffed_tiers, (), now, match.offer_timeout_s
            )

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
        with self._lock:
            c = self._contacts.get(contact_id)
            if c is None or c["state"] != "waiting":
                return None
            return self._match_contact(c, tiers, unstaffed_tiers, avoid, now, offer_timeout_s)

    async def match_volunteer(
        self, *, volunteer_id: str, match: VolunteerMatch, now: float
    ) -> Matched | None:
        with self._lock:
            return self._match_volunteer(volunteer_id, match, now)

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
            self._vols[volunteer_id]["missed"] = 0  # an answer: the streak of misses ends

    async def offer_expire(
        self, *, contact_id: str, now: float, missed_to_pause: int, volunteer_id: str = ""
    ) -> ExpiredOffer | None:
        with self._lock:
            found = self._contacts.get(contact_id)
            if volunteer_id:
                found = self._offered_to(contact_id, volunteer_id)
            elif found is None or found["state"] != "offered" or found["offer_expires_at"] > now:
                return None
            c = found
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
        self,
        *,
        contact_id: str,
        volunteer_id: str,
        now: float,
        match: VolunteerMatch | None = None,
    ) -> tuple[ContactState, Matched | None]:
        with self._lock:
            c = self._contact(contact_id)
            if c["state"] != "wrap_up" or c["volunteer"] != volunteer_id:
                raise TransitionRefused("not_in_wrap_up", contact_id)
            samples = self._handle.setdefault(c["channel"], [])
            samples.insert(0, now - c["answered_at"])
            del samples[HANDLE_SAMPLES:]
            self._unload(c, volunteer_id, now, finished=True)
            final = self._delete(c, state="closed")
            matched = None if match is None else self._match_volunteer(volunteer_id, match, now)
            return final, matched

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
