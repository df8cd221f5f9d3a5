"""Routing policy as pure functions: who may take whom, in which order.

No I/O here. The store makes each decision atomically; this module only computes the
*tiers* (for a contact looking for a volunteer) and the *candidate queues with cutoffs*
(for a volunteer looking for a contact) that the store's match primitives take as
arguments. So the simulator runs the very same rules on a simulated clock.

Scores: a waiting queue is ordered by *enqueue score* (the enqueue time; a re-queued
contact gets ``enqueued_at - REQUEUE_HEAD``, below every normal score). A cutoff is the
highest score a volunteer may take from a queue: ``inf`` for "any", ``now - N`` for
"only contacts that have waited at least N seconds".
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Literal

CHANNELS: tuple[str, ...] = ("phone", "chat")
PRESENCES: tuple[str, ...] = ("off_duty", "available", "paused")
NATIONAL = "*"  # the queue of contacts without a home branch (chat without municipality)
ANY = "~"  # every branch at once (a store's whole-channel queue and free set; see matching)
REQUEUE_HEAD = 1e10
INF = math.inf

Mode = Literal["default", "isolated", "national"]


@dataclass(frozen=True)
class Ring:
    """Strict locality: home only for ``home_only_s``, all after ``neighbours_until_s``."""

    home_only_s: float
    neighbours_until_s: float


@dataclass(frozen=True)
class Topology:
    """Branches, their neighbours, strict-locality rings and municipality → branch."""

    neighbours: Mapping[str, frozenset[str]]
    rings: Mapping[str, Ring] = field(default_factory=dict)
    municipalities: Mapping[str, str] = field(default_factory=dict)

    @property
    def branches(self) -> tuple[str, ...]:
        return tuple(sorted(self.neighbours))

    @classmethod
    def from_dicts(
        cls,
        neighbours: Mapping[str, Iterable[str]],
        rings: Mapping[str, tuple[float, float]] | None = None,
        municipalities: Mapping[str, str] | None = None,
    ) -> Topology:
        """Build without a database; neighbour links are made symmetric."""
        links: dict[str, set[str]] = {b: set() for b in neighbours}
        for branch, others in neighbours.items():
            for other in others:
                if other == branch:
                    continue
                links.setdefault(other, set()).add(branch)
                links[branch].add(other)
        return cls(
            neighbours={b: frozenset(n) for b, n in links.items()},
            rings={b: Ring(float(a), float(m)) for b, (a, m) in (rings or {}).items()},
            municipalities=dict(municipalities or {}),
        )

    @classmethod
    def from_db(cls) -> Topology:
        """Read branches, neighbours, strict rings and municipalities (sync ORM)."""
        from volunteers.models import Branch, Municipality

        neighbours: dict[str, set[str]] = {}
        rings: dict[str, tuple[float, float]] = {}
        for branch in Branch.objects.prefetch_related("neighbours"):
            neighbours[branch.slug] = {n.slug for n in branch.neighbours.all()}
            if branch.strict_locality:
                rings[branch.slug] = (branch.ring_home_only_s, branch.ring_neighbours_until_s)
        munis = dict(Municipality.objects.values_list("code", "branch__slug"))
        return cls.from_dicts(neighbours, rings, munis)

    def distance(self, home: str, other: str) -> int:
        """0 home, 1 neighbour, 2 further (a national contact is "home" everywhere)."""
        if home == other or home == NATIONAL:
            return 0
        return 1 if other in self.neighbours.get(home, frozenset()) else 2


@dataclass(frozen=True)
class RoutingPolicy:
    """The knobs of routing. ``mode`` and ``strict_everywhere`` exist for the simulator's
    what-if runs; production uses ``default`` with per-branch rings from the topology."""

    mode: Mode = "default"
    strict_everywhere: Ring | None = None
    offer_timeout_s: float = 20.0
    missed_offers_to_pause: int = 2
    drop_grace_s: float = 60.0
    wait_cap_s: float = 60.0

    @classmethod
    def from_settings(cls) -> RoutingPolicy:
        from django.conf import settings

        cfg = settings.ROUTING
        return cls(
            offer_timeout_s=float(cfg["OFFER_TIMEOUT_S"]),
            missed_offers_to_pause=int(cfg["MISSED_OFFERS_TO_PAUSE"]),
            drop_grace_s=float(cfg["DROP_GRACE_S"]),
            wait_cap_s=float(cfg["WAIT_CAP_S"]),
        )

    @classmethod
    def named(cls, name: str, **knobs: float) -> RoutingPolicy:
        """The four policies the simulator compares: isolated, strict, default, national."""
        if name == "strict":
            return cls(strict_everywhere=Ring(30.0, 90.0), **knobs)  # type: ignore[arg-type]
        if name in ("default", "isolated", "national"):
            return cls(mode=name, **knobs)  # type: ignore[arg-type]
        raise ValueError(f"unknown policy {name!r}")

    def ring(self, topology: Topology, branch: str) -> Ring | None:
        if self.mode != "default":
            return None
        return self.strict_everywhere or topology.rings.get(branch)


@dataclass(frozen=True)
class QueueSpec:
    """One waiting queue a volunteer may take from, with its tier and score cutoff.

    ``unstaffed_cutoff``, when set, is the cutoff to use instead if nobody of ``branch``
    is available for ``channel`` at the moment the store decides (a strict branch's
    home-only ring is skipped when nobody is on duty there); the store checks that in
    the same atomic step, so a presence change in between cannot slip through.
    """

    tier: int
    branch: str
    channel: str
    cutoff: float
    unstaffed_cutoff: float | None = None


def _others(topology: Topology, branch: str) -> list[str]:
    near = topology.neighbours.get(branch, frozenset())
    return [b for b in topology.branches if b != branch and b not in near]


def contact_tiers(
    topology: Topology, policy: RoutingPolicy, *, home: str, waited_s: float, home_staffed: bool
) -> list[list[str]]:
    """Branches whose free volunteers may be offered this contact, best tier first.

    ``home_staffed``: someone of the home branch is available for the channel; a strict
    home branch with nobody on duty skips its home-only ring at once.
    """
    everyone = list(topology.branches)
    if home == NATIONAL or policy.mode == "national":
        return [everyone]
    if policy.mode == "isolated":
        return [[home]]
    near = sorted(topology.neighbours.get(home, frozenset()))
    far = _others(topology, home)
    tiers = [[home]]
    ring = policy.ring(topology, home)
    if ring is None or waited_s >= ring.home_only_s or not home_staffed:
        tiers.append(near)
    if ring is None or waited_s >= ring.neighbours_until_s:
        tiers.append(far)
    return [t for t in tiers if t]


def home_cutoff(ring: Ring | None, *, distance: int, now: float, home_staffed: bool) -> float:
    """The highest enqueue score a volunteer ``distance`` away may take from a queue."""
    if ring is None or distance == 0:
        return INF
    if distance == 1:
        return INF if not home_staffed else now - ring.home_only_s
    return now - ring.neighbours_until_s


def volunteer_queues(
    topology: Topology,
    policy: RoutingPolicy,
    *,
    branch: str,
    channels: Iterable[str],
    now: float,
    staffed: Mapping[str, bool] | None = None,
) -> list[QueueSpec]:
    """The queues a volunteer of ``branch`` may take from: own (and national) first, then
    neighbours, then the rest. ``staffed`` tells, for strict branches only, whether anyone
    there is on duty for the channel (default: yes). Without ``staffed``, a neighbouring
    strict branch's queue carries both cutoffs and the store picks the one that holds
    when it decides (``QueueSpec.unstaffed_cutoff``)."""
    checked = staffed is None
    staffed = staffed or {}
    specs: list[QueueSpec] = []
    for channel in channels:
        if policy.mode == "national":
            specs += [QueueSpec(0, b, channel, INF) for b in (*topology.branches, NATIONAL)]
            continue
        specs.append(QueueSpec(0, branch, channel, INF))
        specs.append(QueueSpec(0, NATIONAL, channel, INF))
        if policy.mode == "isolated":
            continue
        near = sorted(topology.neighbours.get(branch, frozenset()))
        for tier, group in ((1, near), (2, _others(topology, branch))):
            for other in group:
                ring = policy.ring(topology, other)
                cutoff = home_cutoff(
                    ring, distance=tier, now=now, home_staffed=staffed.get(other, True)
                )
                unstaffed = None
                if checked and ring is not None:
                    alt = home_cutoff(ring, distance=tier, now=now, home_staffed=False)
                    unstaffed = alt if alt != cutoff else None
                specs.append(QueueSpec(tier, other, channel, cutoff, unstaffed))
    return specs


def strict_branches(topology: Topology, policy: RoutingPolicy) -> list[str]:
    """Branches whose rings depend on who is on duty there."""
    return [b for b in topology.branches if policy.ring(topology, b) is not None]
