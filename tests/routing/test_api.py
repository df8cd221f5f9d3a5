"""The routing API the channels build on: a missed call-out, the caller's own contact id,
reads for one contact / one volunteer / many queue places, and a topology that learns
of a branch added after it was loaded. On both stores."""

from __future__ import annotations

import uuid

from routing.clock import ManualClock
from routing.engine import Engine
from routing.policy import RoutingPolicy, Topology
from routing.store.base import RoutingStore
from routing.trail import CollectingSink
from tests.routing.conftest import line_topology, offered_to, volunteer
from tests.routing.test_refusals import refused


async def test_a_missed_offer_moves_on_at_once_and_counts(
    engine: Engine, sink: CollectingSink
) -> None:
    await volunteer(engine, "a", "north", channels=("phone",))
    await volunteer(engine, "b", "north", channels=("phone",))
    call = await engine.contact_enqueue(channel="phone", home_branch="north")
    first = await offered_to(engine, call.contact_id)
    other = "b" if first == "a" else "a"
    await engine.offer_miss(contact_id=call.contact_id, volunteer_id=first)
    # no waiting for the 20 s timer: the other volunteer is offered the call now
    assert await offered_to(engine, call.contact_id) == other
    withdrawn = [e for e in sink.events if e.type == "offer.withdrawn"]
    assert withdrawn[-1].payload == {
        "contact_id": call.contact_id,
        "volunteer_id": first,
        "reason": "missed",
    }
    vol = await engine.volunteer_view(volunteer_id=first)
    assert vol is not None and vol.missed == 1 and vol.presence["phone"] == "available"


async def test_two_misses_in_a_row_pause_the_volunteer(engine: Engine) -> None:
    await volunteer(engine, "a", "north", channels=("phone",))
    call = await engine.contact_enqueue(channel="phone", home_branch="north")
    await engine.offer_miss(contact_id=call.contact_id, volunteer_id="a")
    assert await offered_to(engine, call.contact_id) == "a"  # nobody else is free
    await engine.offer_miss(contact_id=call.contact_id, volunteer_id="a")
    vol = await engine.volunteer_view(volunteer_id="a")
    assert vol is not None and vol.presence["phone"] == "paused"
    assert await offered_to(engine, call.contact_id) == ""


async def test_a_miss_for_an_offer_that_is_not_yours_is_refused(engine: Engine) -> None:
    await volunteer(engine, "a", "north", channels=("phone",))
    await volunteer(engine, "x", "west", channels=("phone",), available=False)
    call = await engine.contact_enqueue(channel="phone", home_branch="north")
    waiting = await engine.contact_enqueue(channel="phone", home_branch="north")
    e = engine
    for vid in ("x", "ghost", ""):
        await refused(
            e,
            "not_your_offer" if vid else "unknown_contact",
            lambda vid=vid: e.offer_miss(  # type: ignore[misc]
                contact_id=call.contact_id if vid else "nope", volunteer_id=vid or "a"
            ),
        )
    await refused(
        e, "not_your_offer", lambda: e.offer_miss(contact_id=waiting.contact_id, volunteer_id="a")
    )
    await e.offer_accept(contact_id=call.contact_id, volunteer_id="a")
    await refused(
        e, "not_your_offer", lambda: e.offer_miss(contact_id=call.contact_id, volunteer_id="a")
    )


async def test_the_caller_may_name_the_contact(engine: Engine) -> None:
    own = uuid.uuid4().hex
    ticket = await engine.contact_enqueue(channel="phone", home_branch="north", contact_id=own)
    assert ticket.contact_id == own
    state = await engine.contact_get(contact_id=own)
    assert state is not None and state.state == "waiting" and state.home == "north"
    e = engine
    for bad in ("short", own.upper(), own + "0", "../" + own[3:], 42):
        await refused(
            e,
            "bad_contact_id",
            lambda bad=bad: e.contact_enqueue(  # type: ignore[misc]
                channel="phone", home_branch="north", contact_id=bad
            ),
        )
    await refused(
        e,
        "contact_closed",
        lambda: e.contact_enqueue(channel="phone", home_branch="north", contact_id=own),
    )
    assert await engine.contact_get(contact_id=uuid.uuid4().hex) is None
    assert await engine.volunteer_view(volunteer_id="nobody") is None


async def test_queue_positions_in_one_read_match_one_by_one(
    engine: Engine, clock: ManualClock
) -> None:
    tickets = []
    for ch, b in [("phone", "north"), ("chat", "west"), ("phone", "east"), ("chat", None)]:
        tickets.append(await engine.contact_enqueue(channel=ch, home_branch=b))
        clock.advance(1)
    await volunteer(engine, "a", "north", channels=("phone",))  # takes the first call
    ids = [t.contact_id for t in tickets] + ["gone"]
    many = await engine.queue_positions(contact_ids=ids)
    assert set(many) == set(ids) and many["gone"] is None
    for t in tickets:
        assert many[t.contact_id] == await engine.queue_position(contact_id=t.contact_id)
    assert many[tickets[0].contact_id].state == "offered"  # type: ignore[union-attr]
    assert many[tickets[3].contact_id].position == 2  # type: ignore[union-attr]
    # with a handle time on record and someone on duty, the estimates agree too
    await volunteer(engine, "c", "west", channels=("chat",), chat_limit=1)
    first = tickets[0].contact_id
    await engine.offer_accept(contact_id=first, volunteer_id="a")
    clock.advance(300)
    await engine.contact_end(contact_id=first, by="caller")
    await engine.contact_wrapup_done(contact_id=first, volunteer_id="a")
    await engine.volunteer_presence_set(volunteer_id="a", channel="phone", state="paused")
    many = await engine.queue_positions(contact_ids=ids)
    assert many[first] is None  # closed: gone from the live state
    for t in tickets[1:]:
        assert many[t.contact_id] == await engine.queue_position(contact_id=t.contact_id)
    assert any(v is not None and v.estimate_s for v in many.values())


async def test_a_branch_added_after_loading_is_known_at_once(
    store: RoutingStore, clock: ManualClock
) -> None:
    loads: list[Topology] = []
    current = {"topology": line_topology()}

    async def loader() -> Topology:
        loads.append(current["topology"])
        return current["topology"]

    engine = Engine(
        store=store,
        clock=clock,
        policy=RoutingPolicy(),
        topology_loader=loader,
        sink=CollectingSink(),
    )
    await engine.branch_snapshot(branch="north")
    assert len(loads) == 1
    grown = dict(line_topology().neighbours)
    grown["delta"] = frozenset()
    current["topology"] = Topology(neighbours=grown)
    # a new branch: the engine reloads at once instead of refusing for a minute, even
    # right after a load (a server started before the branches were loaded)
    await volunteer(engine, "d", "delta", channels=("phone",))
    ticket = await engine.contact_enqueue(channel="phone", home_branch="delta")
    assert await offered_to(engine, ticket.contact_id) == "d"
    assert len(loads) == 2
    # a stream of unknown names cannot make it reload more than every few seconds
    e = engine
    clock.advance(1)
    for _ in range(5):
        await refused(
            e, "unknown_branch", lambda: e.contact_enqueue(channel="phone", home_branch="mars")
        )
    assert len(loads) == 2
    clock.advance(3)
    await refused(
        e, "unknown_branch", lambda: e.contact_enqueue(channel="phone", home_branch="mars")
    )
    assert len(loads) == 3
