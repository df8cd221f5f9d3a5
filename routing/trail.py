"""Writing the anonymous trail and delivering events after the transaction commits."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass

from asgiref.sync import sync_to_async
from django.db import transaction

from routing.events import Event, dispatch, dispatch_on_commit
from routing.policy import NATIONAL


@dataclass(frozen=True)
class TrailEntry:
    """One ended contact, already anonymous: no ids, the start only to the hour."""

    channel: str
    home_branch: str  # NATIONAL for none
    municipality: str  # "" for none
    answering_branch: str  # "" if unanswered
    started_hour: dt.datetime
    seconds_waited: int
    seconds_talked: int
    outcome: str
    overflow_distance: int | None

    @property
    def left_home(self) -> bool:
        return bool(self.overflow_distance)


def started_hour(epoch: float) -> dt.datetime:
    """The hour (UTC, aware) a contact started: never the minute."""
    stamp = dt.datetime.fromtimestamp(epoch, tz=dt.UTC)
    return stamp.replace(minute=0, second=0, microsecond=0)


def trail_write(entries: Sequence[TrailEntry], events: list[Event]) -> list[int]:
    """Write the rows in one transaction and return their ids; the events go out only
    when it commits (also when this runs inside an outer transaction: a rollback sends
    nothing)."""
    from routing.models import ContactRecord
    from volunteers.models import Branch, Municipality

    slugs = {e.home_branch for e in entries} | {e.answering_branch for e in entries}
    branch_ids = dict(Branch.objects.filter(slug__in=slugs).values_list("slug", "pk"))
    codes = {e.municipality for e in entries if e.municipality}
    muni_ids = dict(Municipality.objects.filter(code__in=codes).values_list("code", "pk"))
    with transaction.atomic():
        rows = ContactRecord.objects.bulk_create(
            ContactRecord(
                channel=e.channel,
                home_branch_id=None if e.home_branch == NATIONAL else branch_ids[e.home_branch],
                municipality_id=muni_ids.get(e.municipality),
                answering_branch_id=branch_ids.get(e.answering_branch),
                started_hour=e.started_hour,
                seconds_waited=max(0, e.seconds_waited),
                seconds_talked=max(0, e.seconds_talked),
                outcome=e.outcome,
                left_home=e.left_home,
                overflow_distance=e.overflow_distance,
            )
            for e in entries
        )
        dispatch_on_commit(events)
    return [row.pk for row in rows if row.pk is not None]


class DjangoSink:
    """Production delivery: trail rows to PostgreSQL, events after commit."""

    async def deliver(self, events: list[Event], trail: list[TrailEntry]) -> list[int]:
        """Returns the ids of the trail rows written."""
        if trail:
            return await sync_to_async(trail_write)(trail, events)
        if events:
            await dispatch(events)
        return []


class CollectingSink:
    """For tests and the simulator: keeps everything in lists, touches no database."""

    def __init__(self, *, hooks: bool = False) -> None:
        self.events: list[Event] = []
        self.trail: list[TrailEntry] = []
        self.hooks = hooks

    async def deliver(self, events: list[Event], trail: list[TrailEntry]) -> None:
        self.events += events
        self.trail += trail
        if self.hooks and events:
            await dispatch(events, channel_layer=False)
