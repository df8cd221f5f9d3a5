"""Routing stores: one small async interface, an in-process and a Redis implementation."""

from routing.store.base import (
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

__all__ = [
    "BranchCounts",
    "ContactMatch",
    "ContactState",
    "DropResult",
    "ExpiredOffer",
    "Matched",
    "Offer",
    "PresenceChange",
    "QueueHead",
    "QueueFacts",
    "RoutingStore",
    "VolunteerMatch",
    "VolunteerState",
]
