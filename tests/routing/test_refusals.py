"""Bad input gets a clear refusal and changes nothing, on both stores (state compared
byte for byte before and after)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

import pytest

from routing.clock import ManualClock
from routing.engine import Engine
from routing.errors import TransitionRefused
from routing.policy import RoutingPolicy
from routing.trail import CollectingSink
from tests.routing.conftest import line_topology, volunteer


async def refused(engine: Engine, code: str, call: Callable[[], Awaitable[object]]) -> None:
    before = await engine.store.dump()
    with pytest.raises(TransitionRefused) as caught:
        await call()
    assert caught.value.code == code, caught.value
    assert caught.value.message
    assert await engine.store.dump() == before


async def test_bad_input_changes_nothing(engine: Engine, clock: ManualClock) -> None:
    await volunteer(engine, "a", "north", channels=("phone", "chat"))
    await volunteer(engine, "b", "north", channels=("chat",), available=False)
    await volunteer(engine, "x", "west", channels=("phone",), available=False)
    offered = await engine.contact_enqueue(channel="phone", home_branch="north")
    waiting = await engine.contact_enqueue(channel="phone", home_branch="north")
    e = engine
    await refused(
        e, "unknown_branch", lambda: e.contact_enqueue(channel="phone", home_branch="nope")
    )
    await refused(
        e, "unknown_channel", lambda: e.contact_enqueue(channel="fax", home_branch="north")
    )
    await refused(
        e,
        "unknown_municipality",
        lambda: e.contact_enqueue(channel="chat", home_branch=None, municipality_code="GM9999"),
    )
    await refused(
        e,
        "wrong_branch",
        lambda: e.contact_enqueue(channel="chat", home_branch="west", municipality_code="GM0001"),
    )
    for limit in (0, 4, 99, -1, True):
        await refused(
            e,
            "bad_capacity",
            lambda limit=limit: e.volunteer_register(  # type: ignore[misc]
                volunteer_id="a", branch="north", channels=["chat"], chat_limit=limit
            ),
        )
    await refused(
        e,
        "unknown_branch",
        lambda: e.volunteer_register(volunteer_id="a", branch="mars", channels=[], chat_limit=1),
    )
    await refused(
        e,
        "unknown_channel",
        lambda: e.volunteer_presence_set(volunteer_id="a", channel="fax", state="available"),
    )
    await refused(
        e,
        "channel_not_taken",
        lambda: e.volunteer_presence_set(volunteer_id="b", channel="phone", state="available"),
    )
    await refused(
        e,
        "unknown_presence",
        lambda: e.volunteer_presence_set(volunteer_id="a", channel="chat", state="asleep"),
    )
    await refused(
        e,
        "unknown_volunteer",
        lambda: e.volunteer_presence_set(volunteer_id="ghost", channel="chat", state="available"),
    )
    # someone else's offer, a waiting contact, a volunteer of another branch forcing it
    for vid in ("b", "x", "ghost"):
        await refused(
            e,
            "not_your_offer",
            lambda vid=vid: e.offer_accept(  # type: ignore[misc]
                contact_id=offered.contact_id, volunteer_id=vid
            ),
        )
        await refused(
            e,
            "not_your_offer",
            lambda vid=vid: e.offer_decline(  # type: ignore[misc]
                contact_id=offered.contact_id, volunteer_id=vid
            ),
        )
    await refused(
        e,
        "not_your_offer",
        lambda: e.offer_accept(contact_id=waiting.contact_id, volunteer_id="x"),
    )
    await refused(e, "unknown_contact", lambda: e.offer_accept(contact_id="nope", volunteer_id="a"))
    await refused(
        e, "not_active", lambda: e.contact_end(contact_id=waiting.contact_id, by="caller")
    )
    await refused(e, "not_active", lambda: e.contact_requeue(contact_id=waiting.contact_id))
    await refused(
        e,
        "not_in_wrap_up",
        lambda: e.contact_wrapup_done(contact_id=offered.contact_id, volunteer_id="a"),
    )
    await refused(e, "unknown_branch", lambda: e.branch_snapshot(branch="mars"))
    await refused(e, "unknown_contact", lambda: e.queue_position(contact_id="nope"))
    # expired offer
    clock.advance(21)
    await refused(
        e,
        "offer_expired",
        lambda: e.offer_accept(contact_id=offered.contact_id, volunteer_id="a"),
    )


async def test_ending_a_closed_contact_is_refused(engine: Engine) -> None:
    await volunteer(engine, "a", "north", channels=("chat",))
    c = await engine.contact_enqueue(channel="chat", home_branch="north")
    await engine.offer_accept(contact_id=c.contact_id, volunteer_id="a")
    await engine.contact_end(contact_id=c.contact_id, by="volunteer")
    e = engine
    await refused(e, "contact_closed", lambda: e.contact_end(contact_id=c.contact_id, by="caller"))
    await refused(e, "contact_closed", lambda: e.contact_abandon(contact_id=c.contact_id))
    await refused(
        e,
        "not_in_wrap_up",
        lambda: e.contact_wrapup_done(contact_id=c.contact_id, volunteer_id="someone"),
    )
    await engine.contact_wrapup_done(contact_id=c.contact_id, volunteer_id="a")
    for call in (
        lambda: e.contact_end(contact_id=c.contact_id, by="caller"),
        lambda: e.contact_wrapup_done(contact_id=c.contact_id, volunteer_id="a"),
        lambda: e.contact_abandon(contact_id=c.contact_id),
        lambda: e.offer_accept(contact_id=c.contact_id, volunteer_id="a"),
    ):
        await refused(e, "unknown_contact", call)


async def test_isolated_volunteer_of_another_branch_never_gets_the_contact(
    store: object, clock: ManualClock
) -> None:
    engine = Engine(
        store=store,  # type: ignore[arg-type]
        clock=clock,
        policy=RoutingPolicy.named("isolated"),
        topology=line_topology(),
        sink=CollectingSink(),
    )
    await volunteer(engine, "x", "east")
    c = await engine.contact_enqueue(channel="chat", home_branch="north")
    await refused(
        engine,
        "not_your_offer",
        lambda: engine.offer_accept(contact_id=c.contact_id, volunteer_id="x"),
    )
