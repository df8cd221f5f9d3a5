"""Routing stores: one small async interface, an in-process and a Redis implementation."""

from routing.store.base import (
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

__all__ = [
    "BranchCounts",
    "ContactState",
    "DropResult",
    "ExpiredOffer",
    "Offer",
    "QueueHead",
    "QueueFacts",
    "RoutingStore",
    "VolunteerState",
]
