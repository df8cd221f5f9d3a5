"""Every event the engine emits matches its schema, and every schema is exercised."""

from __future__ import annotations

import pytest

from routing import events
from routing.clock import ManualClock
from routing.engine import Engine
from routing.trail import CollectingSink
from tests.routing.conftest import volunteer


async def test_every_emitted_event_matches_its_schema(
    engine: Engine, clock: ManualClock, sink: CollectingSink
) -> None:
    await volunteer(engine, "a", "north", channels=("phone", "chat"))
    await volunteer(engine, "b", "east", channels=("chat",))
    c1 = await engine.contact_enqueue(channel="phone", home_branch="north")
    await engine.offer_accept(contact_id=c1.contact_id, volunteer_id="a")
    c2 = await engine.contact_enqueue(channel="chat", home_branch=None)
    await engine.offer_decline(contact_id=c2.contact_id, volunteer_id="b")
    clock.advance(20)
    await engine.tick()
    await engine.contact_abandon(contact_id=c2.contact_id)
    await engine.contact_requeue(contact_id=c1.contact_id)
    await engine.offer_accept(contact_id=c1.contact_id, volunteer_id="a")
    await engine.contact_end(contact_id=c1.contact_id, by="volunteer")
    await engine.contact_wrapup_done(contact_id=c1.contact_id, volunteer_id="a")
    await engine.volunteer_presence_set(volunteer_id="b", channel="chat", state="off_duty")
    assert sink.events
    for event in sink.events:
        events.validate(event)
        assert all(
            g.split(".")[0] in {"volunteer", "contact", "branch", "national"} for g in event.groups
        )
    assert {e.type for e in sink.events} == set(events.SCHEMAS)


def test_schema_rejects_extra_missing_and_wrong_fields() -> None:
    with pytest.raises(events.EventSchemaError):
        events.make("contact.closed", ["national"], contact_id="x", outcome="answered", phone="1")
    with pytest.raises(events.EventSchemaError):
        events.make("contact.closed", ["national"], contact_id="x")
    with pytest.raises(events.EventSchemaError):
        events.make("contact.closed", ["national"], contact_id=1, outcome="answered")
    with pytest.raises(events.EventSchemaError):
        events.make("contact.closed", ["national"], contact_id="x", outcome="maybe")
    with pytest.raises(events.EventSchemaError):
        events.subscribe("no.such", lambda e: None)
