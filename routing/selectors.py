"""The read side of routing: what a waiting caller and a branch manager see.

Reads never change routing state; each is one consistent read of the store (one Lua
script on Redis, one critical section in process). ``Engine.queue_position`` and
``Engine.branch_snapshot`` delegate here, so the public services keep their names.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from routing.errors import TransitionRefused
from routing.policy import Topology
from routing.store.base import QueueFacts, RoutingStore

DEFAULT_HANDLE_S = {"phone": 20 * 60.0, "chat": 30 * 60.0}
MAX_ESTIMATE_S = 2 * 3600


@dataclass(frozen=True)
class QueueView:
    state: str
    position: int  # 1 = next; 0 when no longer waiting
    waiting_ahead: int
    estimate_s: int | None  # None: nobody on duty for the channel, no honest estimate


@dataclass(frozen=True)
class BranchSnapshot:
    branch: str | None  # None: the whole line
    waiting: int
    longest_wait_s: float
    on_duty: int
    busy: int
    paused: int


def _view(facts: QueueFacts) -> QueueView:
    if facts.state != "waiting":
        return QueueView(facts.state, 0, 0, 0)
    estimate = None
    if facts.capacity > 0:
        mean = facts.mean_handle_s or DEFAULT_HANDLE_S[facts.channel]
        estimate = round(min(MAX_ESTIMATE_S, (facts.ahead + 1) * mean / facts.capacity))
    return QueueView("waiting", facts.ahead + 1, facts.ahead, estimate)


async def queue_position(*, store: RoutingStore, contact_id: str) -> QueueView:
    """A contact's place among all waiting contacts of its channel, and the wait estimate
    ``position × mean handle time / capacity on duty`` (capped; None with nobody on duty).
    Refuses an unknown contact."""
    facts = await store.queue_view(contact_id=contact_id)
    if facts is None:
        raise TransitionRefused("unknown_contact", contact_id)
    return _view(facts)


async def queue_positions(
    *, store: RoutingStore, contact_ids: Sequence[str]
) -> dict[str, QueueView | None]:
    """``queue_position`` for many contacts in one batched read; None for one that is
    gone (no refusal: a batch is for watchers, who simply stop watching it)."""
    facts = await store.queue_views(contact_ids=list(dict.fromkeys(contact_ids)))
    return {cid: None if f is None else _view(f) for cid, f in facts.items()}


async def branch_snapshot(
    *, store: RoutingStore, topology: Topology, now: float, branch: str | None
) -> BranchSnapshot:
    """Waiting, longest wait, on duty, busy and paused for one branch, or for the whole
    line with ``branch=None``. Refuses an unknown branch."""
    if branch is not None and branch not in topology.neighbours:
        raise TransitionRefused("unknown_branch", str(branch))
    counts = await store.branch_counts(branch=branch)
    oldest = counts.oldest_enqueued_at
    longest = max(0.0, now - oldest) if oldest is not None else 0.0
    return BranchSnapshot(
        branch, counts.waiting, longest, counts.on_duty, counts.busy, counts.paused
    )
