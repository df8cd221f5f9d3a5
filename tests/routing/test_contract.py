"""The store contract, run on both stores through the engine: policy, capacity, offers."""

from __future__ import annotations

import pytest

from routing.clock import ManualClock
from routing.engine import Engine
from routing.errors import TransitionRefused
from routing.trail import CollectingSink
from tests.routing.conftest import offered_to, volunteer


async def test_contact_waits_then_goes_to_the_volunteer_who_comes_on_duty(engine: Engine) -> None:
    ticket = await engine.contact_enqueue(channel="phone", home_branch="north")
    assert ticket.state == "waiting"
    view = await engine.queue_position(contact_id=ticket.contact_id)
    assert (view.position, view.waiting_ahead, view.estimate_s) == (1, 0, None)
    await volunteer(engine, "v1", "west")  # anyone's callers: work-conserving
    assert await offered_to(engine, ticket.contact_id) == "v1"


async def test_locality_first_then_longest_idle(engine: Engine, clock: ManualClock) -> None:
    await volunteer(engine, "far", "west")
    clock.advance(1)
    await volunteer(engine, "near", "east")
    clock.advance(1)
    await volunteer(engine, "home2", "north")
    clock.advance(1)
    await volunteer(engine, "home3", "north")
    first = await engine.contact_enqueue(channel="phone", home_branch="north")
    second = await engine.contact_enqueue(channel="phone", home_branch="north")
    third = await engine.contact_enqueue(channel="phone", home_branch="north")
    fourth = await engine.contact_enqueue(channel="phone", home_branch="north")
    assert [await offered_to(engine, t.contact_id) for t in (first, second, third, fourth)] == [
        "home2",
        "home3",
        "near",
        "far",
    ]


async def test_freed_volunteer_takes_own_branch_first_unless_past_the_cap(
    engine: Engine, clock: ManualClock
) -> None:
    await volunteer(engine, "v", "north", channels=("phone",))
    busy = await engine.contact_enqueue(channel="phone", home_branch="north")
    await engine.offer_accept(contact_id=busy.contact_id, volunteer_id="v")
    far = await engine.contact_enqueue(channel="phone", home_branch="west")
    clock.advance(10)
    near = await engine.contact_enqueue(channel="phone", home_branch="east")
    clock.advance(10)
    own = await engine.contact_enqueue(channel="phone", home_branch="north")
    await engine.contact_end(contact_id=busy.contact_id, by="volunteer")
    await engine.contact_wrapup_done(contact_id=busy.contact_id, volunteer_id="v")
    assert await offered_to(engine, own.contact_id) == "v"
    await engine.offer_decline(contact_id=own.contact_id, volunteer_id="v")
    # declined and nobody else free: back to v (never idle while an eligible caller waits)
    assert await offered_to(engine, own.contact_id) == "v"
    await engine.offer_accept(contact_id=own.contact_id, volunteer_id="v")
    await engine.contact_end(contact_id=own.contact_id, by="caller")
    clock.advance(45)  # far has now waited 65 s: past the cap, oldest first regardless
    await engine.contact_wrapup_done(contact_id=own.contact_id, volunteer_id="v")
    assert await offered_to(engine, far.contact_id) == "v"
    assert await offered_to(engine, near.contact_id) == ""


async def test_requeued_contact_goes_to_the_head(engine: Engine, clock: ManualClock) -> None:
    await volunteer(engine, "v", "north", channels=("phone",))
    talking = await engine.contact_enqueue(channel="phone", home_branch="north")
    await engine.offer_accept(contact_id=talking.contact_id, volunteer_id="v")
    clock.advance(5)
    older = await engine.contact_enqueue(channel="phone", home_branch="north")
    clock.advance(5)
    state = await engine.contact_requeue(contact_id=talking.contact_id)
    # v is free again and takes the re-queued contact first, ahead of an older one
    assert state.requeues == 1
    assert await offered_to(engine, talking.contact_id) == "v"
    assert (await engine.queue_position(contact_id=older.contact_id)).position == 1


async def test_capacity_phone_takes_all_chat_up_to_limit(engine: Engine) -> None:
    await volunteer(engine, "v", "north", chat_limit=2)
    c1 = await engine.contact_enqueue(channel="chat", home_branch="north")
    p1 = await engine.contact_enqueue(channel="phone", home_branch="north")
    c2 = await engine.contact_enqueue(channel="chat", home_branch="north")
    c3 = await engine.contact_enqueue(channel="chat", home_branch="north")
    assert await offered_to(engine, c1.contact_id) == "v"
    assert await offered_to(engine, p1.contact_id) == ""  # a chat in progress: no phone
    assert await offered_to(engine, c2.contact_id) == "v"  # the offer counts against capacity
    assert await offered_to(engine, c3.contact_id) == ""  # limit 2 reached
    vol = await engine.store.volunteer_get(volunteer_id="v")
    assert vol is not None and (vol.load_chat, vol.load_phone) == (2, 0)
    await engine.offer_accept(contact_id=c1.contact_id, volunteer_id="v")
    await engine.contact_end(contact_id=c1.contact_id, by="caller")
    await engine.contact_wrapup_done(contact_id=c1.contact_id, volunteer_id="v")
    # one chat slot free: the phone call still cannot be taken, the next chat can
    assert await offered_to(engine, p1.contact_id) == ""
    assert await offered_to(engine, c3.contact_id) == "v"
    for c in (c2, c3):
        await engine.offer_accept(contact_id=c.contact_id, volunteer_id="v")
        await engine.contact_end(contact_id=c.contact_id, by="caller")
        await engine.contact_wrapup_done(contact_id=c.contact_id, volunteer_id="v")
    # free of all chats: now the phone call
    assert await offered_to(engine, p1.contact_id) == "v"


async def test_expired_offers_move_on_and_two_misses_pause(
    engine: Engine, clock: ManualClock, sink: CollectingSink
) -> None:
    await volunteer(engine, "slow", "north", channels=("phone",))
    clock.advance(1)
    await volunteer(engine, "other", "north", channels=("phone",), available=False)
    c = await engine.contact_enqueue(channel="phone", home_branch="north")
    assert await offered_to(engine, c.contact_id) == "slow"
    clock.advance(19)
    assert (await engine.tick())["expired"] == 0
    clock.advance(1)
    assert (await engine.tick())["expired"] == 1
    # nobody else free: back to slow (not paused after one miss)
    assert await offered_to(engine, c.contact_id) == "slow"
    with pytest.raises(TransitionRefused) as refused:
        await engine.offer_accept(contact_id=c.contact_id, volunteer_id="other")
    assert refused.value.code == "not_your_offer"
    clock.advance(20)
    await engine.tick()
    vol = await engine.store.volunteer_get(volunteer_id="slow")
    assert vol is not None and vol.presence == {"phone": "paused", "chat": "off_duty"}
    assert await offered_to(engine, c.contact_id) == ""
    paused = [e for e in sink.events if e.type == "presence.changed"]
    assert paused[-1].payload["state"] == "paused"
    await engine.volunteer_presence_set(volunteer_id="other", channel="phone", state="available")
    assert await offered_to(engine, c.contact_id) == "other"


async def test_accepting_an_expired_offer_is_refused(engine: Engine, clock: ManualClock) -> None:
    await volunteer(engine, "v", "north")
    c = await engine.contact_enqueue(channel="chat", home_branch="north")
    clock.advance(20)
    before = await engine.store.dump()
    with pytest.raises(TransitionRefused) as refused:
        await engine.offer_accept(contact_id=c.contact_id, volunteer_id="v")
    assert refused.value.code == "offer_expired"
    assert await engine.store.dump() == before


async def test_decline_goes_to_the_next_volunteer(engine: Engine, clock: ManualClock) -> None:
    await volunteer(engine, "a", "north")
    clock.advance(1)
    await volunteer(engine, "b", "north")
    c = await engine.contact_enqueue(channel="phone", home_branch="north")
    assert await offered_to(engine, c.contact_id) == "a"
    await engine.offer_decline(contact_id=c.contact_id, volunteer_id="a")
    assert await offered_to(engine, c.contact_id) == "b"
    vol = await engine.store.volunteer_get(volunteer_id="a")
    assert vol is not None and vol.missed == 0 and vol.load_phone == 0


async def test_drop_grace_then_requeue_at_head(
    engine: Engine, clock: ManualClock, sink: CollectingSink
) -> None:
    await volunteer(engine, "v", "north", channels=("phone",))
    c = await engine.contact_enqueue(channel="phone", home_branch="north")
    await engine.offer_accept(contact_id=c.contact_id, volunteer_id="v")
    await engine.volunteer_disconnected(volunteer_id="v")
    clock.advance(30)
    await engine.tick()
    assert await engine.volunteer_reconnected(volunteer_id="v") is True
    state = await engine.store.contact_get(contact_id=c.contact_id)
    assert state is not None and state.state == "active"
    await engine.volunteer_disconnected(volunteer_id="v")
    clock.advance(60)
    assert (await engine.tick())["dropped"] == 1
    state = await engine.store.contact_get(contact_id=c.contact_id)
    assert state is not None and state.state == "waiting" and state.requeues == 1
    assert [e.payload["reason"] for e in sink.events if e.type == "contact.requeued"] == ["dropped"]
    vol = await engine.store.volunteer_get(volunteer_id="v")
    assert vol is not None and vol.presence["phone"] == "off_duty" and vol.contacts == ()
    assert await engine.volunteer_reconnected(volunteer_id="v") is False


async def test_abandon_and_trail(engine: Engine, clock: ManualClock, sink: CollectingSink) -> None:
    await volunteer(engine, "v", "east", channels=("phone",))
    gone = await engine.contact_enqueue(channel="phone", home_branch="north")  # offered to v
    clock.advance(3)
    await engine.contact_abandon(contact_id=gone.contact_id)
    assert await engine.store.contact_get(contact_id=gone.contact_id) is None
    talk = await engine.contact_enqueue(channel="phone", home_branch="north")
    clock.advance(4)
    await engine.offer_accept(contact_id=talk.contact_id, volunteer_id="v")
    clock.advance(600)
    await engine.contact_end(contact_id=talk.contact_id, by="volunteer")
    clock.advance(60)
    await engine.contact_wrapup_done(contact_id=talk.contact_id, volunteer_id="v")
    assert await engine.store.contact_get(contact_id=talk.contact_id) is None
    abandoned, answered = sink.trail
    assert (abandoned.outcome, abandoned.answering_branch, abandoned.overflow_distance) == (
        "abandoned",
        "",
        None,
    )
    assert (answered.outcome, answered.answering_branch, answered.overflow_distance) == (
        "answered",
        "east",
        1,
    )
    assert (answered.seconds_waited, answered.seconds_talked, answered.left_home) == (4, 600, True)
    assert answered.started_hour.minute == 0 and answered.started_hour.second == 0
    view = await engine.store.queue_view(contact_id=talk.contact_id)
    assert view is None


async def test_strict_rings_open_on_time(engine: Engine, clock: ManualClock) -> None:
    await volunteer(engine, "home", "harbour", channels=("phone",))
    await volunteer(engine, "near", "south", channels=("phone",))
    await volunteer(engine, "far", "west", channels=("phone",))
    busy = await engine.contact_enqueue(channel="phone", home_branch="harbour")
    assert await offered_to(engine, busy.contact_id) == "home"
    await engine.offer_accept(contact_id=busy.contact_id, volunteer_id="home")
    await engine.volunteer_presence_set(volunteer_id="near", channel="phone", state="paused")
    c = await engine.contact_enqueue(channel="phone", home_branch="harbour")
    await engine.volunteer_presence_set(volunteer_id="near", channel="phone", state="available")
    assert await offered_to(engine, c.contact_id) == ""  # home staffed: home only for 30 s
    clock.advance(29)
    await engine.tick()
    assert await offered_to(engine, c.contact_id) == ""
    clock.advance(1)
    await engine.tick()
    assert await offered_to(engine, c.contact_id) == "near"
    await engine.volunteer_presence_set(volunteer_id="near", channel="phone", state="paused")
    await engine.offer_decline(contact_id=c.contact_id, volunteer_id="near")
    assert await offered_to(engine, c.contact_id) == ""  # far not yet: 90 s
    clock.advance(60)
    await engine.tick()
    assert await offered_to(engine, c.contact_id) == "far"


async def test_strict_home_without_anyone_on_duty_is_skipped(engine: Engine) -> None:
    await volunteer(engine, "near", "south", channels=("phone",))
    c = await engine.contact_enqueue(channel="phone", home_branch="harbour")
    assert await offered_to(engine, c.contact_id) == "near"


async def test_snapshots_and_estimate(engine: Engine, clock: ManualClock) -> None:
    await volunteer(engine, "v", "north", channels=("phone",))
    await volunteer(engine, "p", "north", channels=("chat",), available=False)
    await engine.volunteer_presence_set(volunteer_id="p", channel="chat", state="paused")
    first = await engine.contact_enqueue(channel="phone", home_branch="north")
    await engine.offer_accept(contact_id=first.contact_id, volunteer_id="v")
    waiting = []
    for _ in range(3):
        waiting.append(await engine.contact_enqueue(channel="phone", home_branch="north"))
        clock.advance(1)
    clock.advance(47)
    snap = await engine.branch_snapshot(branch="north")
    assert (snap.waiting, snap.longest_wait_s, snap.on_duty, snap.busy, snap.paused) == (
        3,
        50.0,
        1,
        1,
        1,
    )
    national = await engine.branch_snapshot(branch=None)
    assert national.waiting == 3
    view = await engine.queue_position(contact_id=waiting[2].contact_id)
    assert (view.position, view.waiting_ahead) == (3, 2)
    assert view.estimate_s == 3 * 20 * 60  # default mean handle, capacity 1
    await engine.contact_end(contact_id=first.contact_id, by="caller")
    await engine.contact_wrapup_done(contact_id=first.contact_id, volunteer_id="v")
    view = await engine.queue_position(contact_id=waiting[2].contact_id)
    assert (view.position, view.estimate_s) == (2, 2 * 50)  # measured handle time: 50 s


@pytest.mark.parametrize("mode", ["isolated", "national"])
async def test_isolated_and_national_policies(store: object, clock: ManualClock, mode: str) -> None:
    from routing.policy import RoutingPolicy
    from tests.routing.conftest import line_topology

    engine = Engine(
        store=store,  # type: ignore[arg-type]
        clock=clock,
        policy=RoutingPolicy.named(mode),
        topology=line_topology(),
        sink=CollectingSink(),
    )
    await volunteer(engine, "west1", "west", channels=("phone",))
    clock.advance(1)
    await volunteer(engine, "north1", "north", channels=("phone",))
    c = await engine.contact_enqueue(channel="phone", home_branch="north")
    d = await engine.contact_enqueue(channel="phone", home_branch="east")
    if mode == "isolated":
        assert await offered_to(engine, c.contact_id) == "north1"
        assert await offered_to(engine, d.contact_id) == ""
    else:  # one national pool: longest idle anywhere
        assert await offered_to(engine, c.contact_id) == "west1"
        assert await offered_to(engine, d.contact_id) == "north1"


@pytest.mark.parametrize("how", ["decline", "expiry"])
async def test_a_volunteer_freed_by_a_decline_or_miss_takes_their_own_order(
    engine: Engine, clock: ManualClock, how: str
) -> None:
    await volunteer(engine, "x", "west", channels=("phone",))
    far = await engine.contact_enqueue(channel="phone", home_branch="north")
    assert await offered_to(engine, far.contact_id) == "x"
    clock.advance(1)
    own = await engine.contact_enqueue(channel="phone", home_branch="west")  # waits: x holds far
    if how == "decline":
        await engine.offer_decline(contact_id=far.contact_id, volunteer_id="x")
    else:
        clock.advance(20)
        assert (await engine.tick())["expired"] == 1
    # x is free again: their own branch's caller first (locality), not the declined one back
    assert await offered_to(engine, own.contact_id) == "x"
    assert await offered_to(engine, far.contact_id) == ""


async def test_released_volunteer_takes_the_older_requeued_contact_first(
    engine: Engine, clock: ManualClock
) -> None:
    await volunteer(engine, "v", "north", channels=("phone",))
    clock.advance(1)
    await volunteer(engine, "u", "north", channels=("phone",))
    first = await engine.contact_enqueue(channel="phone", home_branch="north")
    clock.advance(1)
    second = await engine.contact_enqueue(channel="phone", home_branch="north")
    assert [await offered_to(engine, t.contact_id) for t in (first, second)] == ["v", "u"]
    for t, vid in ((first, "v"), (second, "u")):
        await engine.offer_accept(contact_id=t.contact_id, volunteer_id=vid)
    await engine.volunteer_presence_set(volunteer_id="v", channel="phone", state="paused")
    await engine.contact_requeue(contact_id=first.contact_id)  # nobody free: waits at the head
    await engine.contact_requeue(contact_id=second.contact_id)  # u released
    assert await offered_to(engine, first.contact_id) == "u"  # the older re-queued one
    assert await offered_to(engine, second.contact_id) == ""
    assert (await engine.queue_position(contact_id=second.contact_id)).position == 1


async def test_requeued_contact_goes_before_older_arrivals(
    engine: Engine, clock: ManualClock
) -> None:
    await volunteer(engine, "v", "north", channels=("phone",))
    busy = await engine.contact_enqueue(channel="phone", home_branch="north")
    await engine.offer_accept(contact_id=busy.contact_id, volunteer_id="v")
    elsewhere = await engine.contact_enqueue(channel="phone", home_branch="west")
    clock.advance(5)
    own = await engine.contact_enqueue(channel="phone", home_branch="north")
    await engine.contact_end(contact_id=busy.contact_id, by="caller")
    await engine.contact_wrapup_done(contact_id=busy.contact_id, volunteer_id="v")
    # v takes their own branch's caller first, though the west caller came earlier
    assert await offered_to(engine, own.contact_id) == "v"
    await engine.offer_accept(contact_id=own.contact_id, volunteer_id="v")
    await engine.volunteer_presence_set(volunteer_id="v", channel="phone", state="paused")
    await engine.contact_requeue(contact_id=own.contact_id)
    # re-queued, it goes before the west caller who arrived before it
    view = await engine.queue_position(contact_id=elsewhere.contact_id)
    assert (view.position, view.waiting_ahead) == (2, 1)
    assert (await engine.queue_position(contact_id=own.contact_id)).position == 1
    await volunteer(engine, "w", "west", channels=("phone",))
    assert await offered_to(engine, own.contact_id) == "w"


async def test_withdrawn_offers_of_a_dropped_volunteer_move_on_oldest_first(
    engine: Engine, clock: ManualClock
) -> None:
    await volunteer(engine, "d", "north", channels=("chat",), chat_limit=3)
    chats = []
    for _ in range(3):
        chats.append(await engine.contact_enqueue(channel="chat", home_branch="north"))
        clock.advance(1)
    assert [await offered_to(engine, t.contact_id) for t in chats] == ["d", "d", "d"]
    await volunteer(engine, "f", "north", channels=("chat",), chat_limit=1)
    await engine.volunteer_disconnected(volunteer_id="d")
    assert [await offered_to(engine, t.contact_id) for t in chats] == ["f", "", ""]


async def test_strict_rings_follow_who_is_on_duty_for_that_channel(engine: Engine) -> None:
    # harbour (strict) has someone on chat but nobody on the phone: a harbour phone call
    # goes to a neighbour at once, also when that neighbour only becomes free later
    await volunteer(engine, "h", "harbour", channels=("chat",))
    await volunteer(engine, "s", "south", channels=("phone", "chat"))
    busy = await engine.contact_enqueue(channel="phone", home_branch="south")
    await engine.offer_accept(contact_id=busy.contact_id, volunteer_id="s")
    call = await engine.contact_enqueue(channel="phone", home_branch="harbour")
    assert await offered_to(engine, call.contact_id) == ""
    await engine.contact_end(contact_id=busy.contact_id, by="caller")
    await engine.contact_wrapup_done(contact_id=busy.contact_id, volunteer_id="s")
    assert await offered_to(engine, call.contact_id) == "s"


async def test_match_script_rechecks_who_is_on_duty_at_a_strict_home(
    engine: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Another process changes presence at a strict branch between the engine's policy
    computation and the match: the store decides on the presence at that moment."""
    store = engine.store
    await volunteer(engine, "h", "harbour", channels=("phone",))
    await volunteer(engine, "s", "south", channels=("phone",))
    talk = await engine.contact_enqueue(channel="phone", home_branch="harbour")
    assert await offered_to(engine, talk.contact_id) == "h"
    await engine.offer_accept(contact_id=talk.contact_id, volunteer_id="h")
    real_enqueue = store.contact_enqueue

    async def home_leaves_first(**kw: object) -> object:
        await store.presence_set(volunteer_id="h", channels=["phone"], state="off_duty", now=0)
        return await real_enqueue(**kw)  # type: ignore[arg-type]

    # enqueue and match are one store step: the presence changes just before it
    monkeypatch.setattr(store, "contact_enqueue", home_leaves_first)
    # the engine saw harbour staffed (home only for 30 s); by the match nobody is on duty
    call = await engine.contact_enqueue(channel="phone", home_branch="harbour")
    assert await offered_to(engine, call.contact_id) == "s"
    monkeypatch.undo()

    # and the other way: harbour unstaffed when the engine looks, staffed at the match
    await engine.offer_accept(contact_id=call.contact_id, volunteer_id="s")
    later = await engine.contact_enqueue(channel="phone", home_branch="harbour")
    assert await offered_to(engine, later.contact_id) == ""
    real_wrapup = store.contact_wrapup_done

    async def home_arrives_first(**kw: object) -> object:
        await store.presence_set(volunteer_id="h", channels=["phone"], state="available", now=0)
        return await real_wrapup(**kw)  # type: ignore[arg-type]

    monkeypatch.setattr(store, "contact_wrapup_done", home_arrives_first)
    await engine.contact_end(contact_id=call.contact_id, by="caller")
    await engine.contact_wrapup_done(contact_id=call.contact_id, volunteer_id="s")
    # harbour is staffed again and the caller waited < 30 s: not for south yet
    assert await offered_to(engine, later.contact_id) == ""


async def test_a_decline_breaks_the_streak_of_missed_offers(
    engine: Engine, clock: ManualClock
) -> None:
    await volunteer(engine, "v", "north", channels=("phone",))
    c = await engine.contact_enqueue(channel="phone", home_branch="north")
    clock.advance(20)
    await engine.tick()  # missed once; nobody else: offered to v again
    assert await offered_to(engine, c.contact_id) == "v"
    await engine.offer_decline(contact_id=c.contact_id, volunteer_id="v")
    assert await offered_to(engine, c.contact_id) == "v"  # nobody else free
    clock.advance(20)
    await engine.tick()  # missed again, but not twice in a row
    vol = await engine.store.volunteer_get(volunteer_id="v")
    assert vol is not None and vol.presence["phone"] == "available" and vol.missed == 1
    assert await offered_to(engine, c.contact_id) == "v"
    clock.advance(20)
    await engine.tick()  # the second miss in a row pauses
    vol = await engine.store.volunteer_get(volunteer_id="v")
    assert vol is not None and vol.presence["phone"] == "paused"


async def test_a_raised_chat_limit_is_used_at_the_next_presence_change(engine: Engine) -> None:
    await volunteer(engine, "v", "north", channels=("phone", "chat"), chat_limit=1)
    first = await engine.contact_enqueue(channel="chat", home_branch="north")
    second = await engine.contact_enqueue(channel="chat", home_branch="north")
    assert [await offered_to(engine, t.contact_id) for t in (first, second)] == ["v", ""]
    # the manager raises the limit; the console then pauses the phone only
    await engine.volunteer_register(
        volunteer_id="v", branch="north", channels=("phone", "chat"), chat_limit=2
    )
    await engine.volunteer_presence_set(volunteer_id="v", channel="phone", state="paused")
    assert await offered_to(engine, second.contact_id) == "v"
