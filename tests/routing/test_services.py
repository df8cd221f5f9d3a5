"""The public services against PostgreSQL: volunteers from their rows, the anonymous
trail, events after commit, fair use without a trace of the caller."""

from __future__ import annotations

import datetime as dt
import zoneinfo
from collections.abc import AsyncIterator, Iterator
from typing import Any

import pytest
import redis
from asgiref.sync import sync_to_async
from django.apps import apps
from django.db import connections, transaction

from routing import events, services
from routing.clock import ManualClock
from routing.engine import Engine
from routing.errors import FairUseRefused, TransitionRefused
from routing.models import ContactRecord
from routing.store.base import RoutingStore
from routing.trail import TrailEntry, started_hour, trail_write
from tests.routing.conftest import REDIS_URL

pytestmark = pytest.mark.django_db(transaction=True)
AMS = zoneinfo.ZoneInfo("Europe/Amsterdam")
PHONE = "+31612398765"


@pytest.fixture
async def live(store: RoutingStore, clock: ManualClock, geography: None) -> AsyncIterator[Engine]:
    engine = services.build_engine(store=store, clock=clock)
    services.set_engine(engine)
    yield engine
    services.set_engine(None)
    await sync_to_async(connections.close_all)()


@pytest.fixture
def seen() -> Iterator[list[events.Event]]:
    got: list[events.Event] = []
    for kind in events.SCHEMAS:
        events.subscribe(kind, got.append)
    yield got
    for kind in events.SCHEMAS:
        events.unsubscribe(kind, got.append)


async def test_contact_path_writes_one_anonymous_row(
    live: Engine, clock: ManualClock, anna: Any, carla: Any, seen: list[events.Event]
) -> None:
    await services.volunteer_presence_set(volunteer_id=carla.pk, channel="all", state="available")
    ticket = await services.contact_enqueue(channel="chat", home_branch="utrecht")
    assert ticket.state == "offered"  # Carla, Eemland, neighbour of Utrecht
    clock.advance(7)
    await services.offer_accept(contact_id=ticket.contact_id, volunteer_id=carla.pk)
    clock.advance(1200)
    await services.contact_end(contact_id=ticket.contact_id, by="caller")
    clock.advance(120)
    final = await services.contact_wrapup_done(contact_id=ticket.contact_id, volunteer_id=carla.pk)
    row = await ContactRecord.objects.select_related("home_branch", "answering_branch").aget()
    assert final.record_id == row.pk  # so the wrap-up's registration can be linked to it
    assert (row.home_branch.slug, row.answering_branch.slug) == ("utrecht", "eemland")
    assert (row.seconds_waited, row.seconds_talked, row.outcome) == (7, 1200, "answered")
    assert (row.left_home, row.overflow_distance) == (True, 1)
    assert row.started_hour == started_hour(clock.now())  # the hour, never the minute
    assert await live.store.contact_get(contact_id=ticket.contact_id) is None
    types = [e.type for e in seen]
    assert types[-1] == "contact.closed" and "offer.made" in types
    snap = await services.branch_snapshot(branch="eemland")
    assert (snap.on_duty, snap.busy) == (1, 0)
    assert (await services.national_snapshot()).on_duty == 1


async def test_volunteers_come_from_their_rows(live: Engine, anna: Any) -> None:
    with pytest.raises(TransitionRefused) as refused:
        await services.volunteer_presence_set(
            volunteer_id=999999, channel="chat", state="available"
        )
    assert refused.value.code == "unknown_volunteer"
    anna.takes_phone = False
    await anna.asave()
    with pytest.raises(TransitionRefused) as refused:
        await services.volunteer_presence_set(
            volunteer_id=anna.pk, channel="phone", state="available"
        )
    assert refused.value.code == "channel_not_taken"
    await services.volunteer_presence_set(volunteer_id=anna.pk, channel="chat", state="available")
    vol = await live.store.volunteer_get(volunteer_id=str(anna.pk))
    assert vol is not None and vol.branch == "utrecht" and vol.chat_limit == anna.chat_limit
    anna.is_active = False
    await anna.asave()
    with pytest.raises(TransitionRefused):
        await services.volunteer_presence_set(volunteer_id=anna.pk, channel="chat", state="paused")


def _entry() -> TrailEntry:
    return TrailEntry("phone", "utrecht", "", "", started_hour(1.7e9), 3, 0, "abandoned", None)


def test_events_follow_the_commit_and_a_rollback_sends_nothing(
    geography: None, seen: list[events.Event]
) -> None:
    event = events.make("contact.closed", ["contact.x"], contact_id="x", outcome="abandoned")

    class Boom(Exception):
        pass

    with pytest.raises(Boom), transaction.atomic():
        trail_write([_entry()], [event])
        raise Boom
    assert seen == [] and ContactRecord.objects.count() == 0
    with transaction.atomic():
        trail_write([_entry()], [event])
        assert seen == []  # not before the commit
    assert seen == [event] and ContactRecord.objects.count() == 1


async def test_fair_use_calendar_day_and_no_trace(
    live: Engine, clock: ManualClock, anna: Any
) -> None:
    clock.set(dt.datetime(2031, 3, 5, 20, 0, tzinfo=AMS).timestamp())
    for _ in range(4):
        await services.contact_enqueue(channel="phone", home_branch="utrecht", fair_use_key=PHONE)
        clock.advance(3600 - 10)
    with pytest.raises(FairUseRefused) as refused:  # 23:59: the 5th within the day
        await services.contact_enqueue(channel="phone", home_branch="utrecht", fair_use_key=PHONE)
    assert "113" in refused.value.user_message
    other = await services.contact_enqueue(
        channel="phone", home_branch="utrecht", fair_use_key="+31600000001"
    )
    assert other.state == "waiting"
    clock.advance(3600)  # 00:59 the next day: a new day, a new key, a new count
    await services.contact_enqueue(channel="phone", home_branch="utrecht", fair_use_key=PHONE)
    refused_rows = await ContactRecord.objects.filter(outcome="refused").acount()
    assert refused_rows == 1
    # the number is nowhere: not in any Redis key or value, not in the store, not in a row
    needles = (PHONE, PHONE.lstrip("+"), PHONE[-9:])
    client = redis.Redis.from_url(REDIS_URL)
    for key in client.scan_iter(count=1000):
        kind = client.type(key)
        value: Any = {
            b"string": client.get,
            b"hash": client.hgetall,
            b"set": client.smembers,
            b"list": lambda k: client.lrange(k, 0, -1),
            b"zset": lambda k: client.zrange(k, 0, -1, withscores=True),
        }.get(kind, lambda k: b"")(key)
        blob = repr((key, value))
        assert not any(n in blob for n in needles), key
    dumped = repr(await live.store.dump())
    assert not any(n in dumped for n in needles)

    def rows() -> str:
        return repr([list(m.objects.values_list()) for m in apps.get_models()])

    everything = await sync_to_async(rows)()
    assert not any(n in everything for n in needles)
