"""Routing events: one schema per type, pushed after the state change (and after commit).

Events go to channel-layer groups (``volunteer.<id>``, ``contact.<id>``,
``branch.<slug>``, ``national``) as ``{"type": "routing.event", "event": <type>,
"payload": {...}}``, and to in-process hooks registered with :func:`subscribe` (e.g.
telephony calls the volunteer's phone on ``offer.made`` for a phone contact). Events
carry ids, channels, branches and states only: never a caller identifier or text.

Delivery is at most once (``group_send`` may drop): consumers re-read state through the
services (``queue_position``, ``branch_snapshot``) when they need the truth.
"""

from __future__ import annotations

import inspect
import logging
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from asgiref.sync import async_to_sync
from django.db import transaction

logger = logging.getLogger(__name__)

Hook = Callable[["Event"], Awaitable[None] | None]

SCHEMAS: dict[str, dict[str, type | tuple[type, ...]]] = {
    "contact.queued": {"contact_id": str, "channel": str, "home_branch": str},
    "offer.made": {
        "contact_id": str,
        "volunteer_id": str,
        "channel": str,
        "home_branch": str,
        "volunteer_branch": str,
        "expires_at": float,
        "requeued": bool,
    },
    "offer.withdrawn": {"contact_id": str, "volunteer_id": str, "reason": str},
    "contact.assigned": {
        "contact_id": str,
        "volunteer_id": str,
        "channel": str,
        "volunteer_branch": str,
    },
    "contact.requeued": {"contact_id": str, "channel": str, "home_branch": str, "reason": str},
    "contact.ended": {"contact_id": str, "volunteer_id": str, "by": str},
    "contact.closed": {"contact_id": str, "outcome": str},
    "queue.changed": {"branch": str, "channel": str},
    "presence.changed": {"volunteer_id": str, "branch": str, "channel": str, "state": str},
}
REASONS = {"expired", "missed", "declined", "abandoned", "disconnected", "requeued", "dropped"}
ENUMS: dict[str, set[str]] = {
    "reason": REASONS,
    "channel": {"phone", "chat"},
    "by": {"caller", "volunteer", "system"},
    "outcome": {"answered", "abandoned", "refused"},
    "state": {"off_duty", "available", "paused"},
}


class EventSchemaError(ValueError):
    pass


@dataclass(frozen=True)
class Event:
    type: str
    payload: dict[str, Any]
    groups: tuple[str, ...] = field(default_factory=tuple)

    def message(self) -> dict[str, Any]:
        return {"type": "routing.event", "event": self.type, "payload": self.payload}


def validate(event: Event) -> None:
    """Raise ``EventSchemaError`` unless the payload matches its type's schema exactly."""
    schema = SCHEMAS.get(event.type)
    if schema is None:
        raise EventSchemaError(f"unknown event type {event.type!r}")
    if set(event.payload) != set(schema):
        raise EventSchemaError(f"{event.type}: fields {sorted(event.payload)} != {sorted(schema)}")
    for name, kind in schema.items():
        value = event.payload[name]
        if not isinstance(value, kind) or (kind is not bool and isinstance(value, bool)):
            raise EventSchemaError(f"{event.type}.{name}: {value!r} is not {kind}")
        if name in ENUMS and value not in ENUMS[name]:
            raise EventSchemaError(f"{event.type}.{name}: {value!r} not one of {ENUMS[name]}")
    for group in event.groups:
        if not group or len(group) >= 100 or "*" in group:
            raise EventSchemaError(f"bad group name {group!r}")


def make(event_type: str, groups: Iterable[str], **payload: Any) -> Event:
    if "expires_at" in payload:
        payload["expires_at"] = float(payload["expires_at"])
    event = Event(event_type, payload, tuple(dict.fromkeys(groups)))
    validate(event)
    return event


# --- in-process hooks --------------------------------------------------------------------
_hooks: dict[str, list[Hook]] = {}


def subscribe(event_type: str, callback: Hook) -> None:
    """Call ``callback(event)`` (sync or async) after each delivered event of this type.
    Keep it quick: hand slow work to Celery."""
    if event_type not in SCHEMAS:
        raise EventSchemaError(f"unknown event type {event_type!r}")
    _hooks.setdefault(event_type, []).append(callback)


def unsubscribe(event_type: str, callback: Hook) -> None:
    if callback in _hooks.get(event_type, []):
        _hooks[event_type].remove(callback)


async def dispatch(events: Iterable[Event], *, channel_layer: bool = True) -> None:
    """Deliver now: hooks first, then the channel layer. A failing hook is logged, never
    undoes the state change that already happened."""
    from channels.layers import get_channel_layer

    layer = get_channel_layer() if channel_layer else None
    for event in events:
        for hook in list(_hooks.get(event.type, [])):
            try:
                result = hook(event)
                if inspect.isawaitable(result):
                    await result
            except Exception:
                logger.exception("routing hook for %s failed", event.type)
        if layer is not None:
            for group in event.groups:
                try:
                    await layer.group_send(group, event.message())
                except Exception:
                    logger.exception("routing event %s to a group failed", event.type)


def dispatch_on_commit(events: list[Event]) -> None:
    """Sync code inside a transaction: deliver only if and when it commits."""
    if events:
        transaction.on_commit(lambda: async_to_sync(dispatch)(events))
