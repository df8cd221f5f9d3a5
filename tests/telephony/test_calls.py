"""Whole calls through the simulator against real PostgreSQL and Redis."""

from __future__ import annotations

import pytest

from routing import services as routing
from routing.errors import TransitionRefused
from telephony import services
from telephony.simulator import Phone
from tests.telephony.conftest import (
    ANNA_PHONE,
    BRAM_PHONE,
    CALLER,
    NATIONAL_NUMBER,
    START,
    UTRECHT_NUMBER,
    contact_of,
    on_duty,
    records,
    state_of,
)

pytestmark = pytest.mark.django_db(transaction=True)


async def test_answered_call_ends_in_a_trail_row_and_deleted_resources(sim, line):
    await on_duty(line["anna"])
    call = await sim.incoming(from_=CALLER, to=UTRECHT_NUMBER)
    contact = contact_of(sim)
    [volunteer_leg] = sim.outbound(to=ANNA_PHONE)
    assert volunteer_leg.status == "in-progress"
    assert any("Utrecht" in text for text in volunteer_leg.heard)
    conference = sim.conference_of(call)
    assert conference is not None and conference.started
    assert set(conference.members) == {call.sid, volunteer_leg.sid}
    state = await state_of(contact)
    assert (state.state, state.volunteer) == ("active", str(line["anna"].pk))

    await sim.hangup(call)
    assert volunteer_leg.over  # the caller's exit ends the conference
    state = await state_of(contact)
    assert state.state == "wrap_up"
    await routing.contact_wrapup_done(contact_id=contact, volunteer_id=line["anna"].pk)
    assert await records() == [("answered", 0)]
    assert call.deleted and volunteer_leg.deleted


async def test_volunteer_who_does_not_answer_is_skipped_and_the_next_answers(sim, line, clock):
    sim.phones[ANNA_PHONE] = Phone(answers=False)
    await on_duty(line["anna"])
    clock.advance(5)
    await on_duty(line["bram"])  # Anna has been idle longest: she is offered first
    call = await sim.incoming(from_=CALLER, to=UTRECHT_NUMBER)
    contact = contact_of(sim)
    await sim.settle()
    [missed] = sim.outbound(to=ANNA_PHONE)
    assert missed.status == "no-answer"
    # a missed offer at once (routing.offer_miss): no waiting for the 20 s offer timer
    [taken] = sim.outbound(to=BRAM_PHONE)
    assert taken.status == "in-progress"
    state = await state_of(contact)
    assert (state.state, state.volunteer) == ("active", str(line["bram"].pk))
    assert set(sim.conference_of(call).members) == {call.sid, taken.sid}


async def test_volunteer_who_presses_nothing_counts_as_missed(sim, line, clock):
    sim.phones[ANNA_PHONE] = Phone(press="")
    await on_duty(line["anna"])
    call = await sim.incoming(from_=CALLER, to=UTRECHT_NUMBER)
    await sim.settle()
    # each miss counts at once; alone on duty, she is rung again after the first, and
    # the second pauses her: no ringing loop
    legs = sim.outbound(to=ANNA_PHONE)
    assert len(legs) == 2
    for leg in legs:
        assert leg.over and any("Geen toets ingedrukt" in text for text in leg.heard)
    assert not sim.conference_of(call).started
    clock.advance(21)
    await routing.tick()
    await sim.settle()
    assert len(sim.outbound(to=ANNA_PHONE)) == 2
    state = await state_of(contact_of(sim))
    assert state.state == "waiting"  # two misses: Anna is paused, the caller waits on
    anna = await routing.volunteer_view(volunteer_id=line["anna"].pk)
    assert anna is not None and anna.presence["phone"] == "paused"


async def test_volunteer_who_presses_another_key_declines(sim, line, clock):
    sim.phones[ANNA_PHONE] = Phone(press="2")
    await on_duty(line["anna"])
    clock.advance(5)
    await on_duty(line["bram"])
    await sim.incoming(from_=CALLER, to=UTRECHT_NUMBER)
    [declined] = sim.outbound(to=ANNA_PHONE)
    assert declined.over
    [taken] = sim.outbound(to=BRAM_PHONE)
    assert taken.status == "in-progress"


async def test_caller_who_hangs_up_while_waiting_is_recorded_as_abandoned(sim, line, clock):
    call = await sim.incoming(from_=CALLER, to=UTRECHT_NUMBER)
    contact = contact_of(sim)
    assert any("nummer 1 in de wachtrij" in text for text in call.heard)
    clock.advance(42)
    await sim.hold_tick(call)
    await sim.hangup(call)
    assert await state_of(contact) is None
    from routing.models import ContactRecord

    rows = [r async for r in ContactRecord.objects.values("outcome", "seconds_waited")]
    assert rows == [{"outcome": "abandoned", "seconds_waited": 42}]
    assert call.deleted


async def test_volunteer_who_drops_mid_call_hands_the_caller_to_the_next(sim, line, clock):
    await on_duty(line["anna"])
    call = await sim.incoming(from_=CALLER, to=UTRECHT_NUMBER)
    contact = contact_of(sim)
    [first] = sim.outbound(to=ANNA_PHONE)
    sim.phones[ANNA_PHONE] = Phone(answers=False)  # her line is dead now
    await on_duty(line["bram"])
    await sim.hangup(first)  # the volunteer's phone drops
    assert any("verbinding met uw gesprekspartner is verbroken" in t for t in call.heard)
    assert not call.over
    state = await state_of(contact)
    if state.state == "offered" and state.offered_to == str(line["anna"].pk):
        clock.advance(21)  # routing may offer her first again: her phone stays dead
        await routing.tick()
        await sim.settle()
    state = await state_of(contact)
    assert (state.state, state.volunteer) == ("active", str(line["bram"].pk))
    [second] = sim.outbound(to=BRAM_PHONE)
    assert set(sim.conference_of(call).members) == {call.sid, second.sid}


async def test_warm_handover_to_113_lets_the_volunteer_drop_off(sim, line):
    await on_duty(line["anna"])
    call = await sim.incoming(from_=CALLER, to=UTRECHT_NUMBER)
    contact = contact_of(sim)
    [leg] = sim.outbound(to=ANNA_PHONE)
    await services.call_handover(contact_id=contact, volunteer_id=line["anna"].pk)
    await services.call_handover(contact_id=contact, volunteer_id=line["anna"].pk)  # twice
    await sim.settle()
    [crisis] = sim.outbound(to="113")
    assert set(sim.conference_of(call).members) == {call.sid, leg.sid, crisis.sid}
    await sim.hangup(leg)  # the volunteer drops off; caller and 113 talk on
    assert set(sim.conference_of(call).members) == {call.sid, crisis.sid}
    assert (await state_of(contact)).state == "wrap_up"
    await sim.hangup(call)
    assert crisis.over and call.deleted and leg.deleted and crisis.deleted


async def test_handover_and_end_are_refused_for_someone_else(sim, line):
    await on_duty(line["anna"])
    await sim.incoming(from_=CALLER, to=UTRECHT_NUMBER)
    contact = contact_of(sim)
    with pytest.raises(TransitionRefused):
        await services.call_handover(contact_id=contact, volunteer_id=line["bram"].pk)
    with pytest.raises(TransitionRefused):
        await services.call_end(contact_id=contact, volunteer_id=line["bram"].pk)
    with pytest.raises(TransitionRefused):
        await services.call_end(contact_id="0" * 32, volunteer_id=line["anna"].pk)
    assert sim.outbound(to="113") == []


async def test_volunteer_ends_the_call_from_the_console(sim, line):
    await on_duty(line["anna"])
    call = await sim.incoming(from_=CALLER, to=UTRECHT_NUMBER)
    contact = contact_of(sim)
    [leg] = sim.outbound(to=ANNA_PHONE)
    await services.call_end(contact_id=contact, volunteer_id=line["anna"].pk)
    await sim.settle()
    assert call.over and leg.over
    assert any("gesprek is beëindigd" in t for t in call.heard)
    assert (await state_of(contact)).state == "wrap_up"


async def test_fifth_call_of_the_day_is_refused_and_the_first_of_the_next_day_is_not(
    sim, line, clock
):
    for _ in range(4):
        call = await sim.incoming(from_=CALLER, to=UTRECHT_NUMBER)
        assert not call.over
        await sim.hangup(call)
    fifth = await sim.incoming(from_=CALLER, to=UTRECHT_NUMBER)
    assert fifth.over and any("113" in t for t in fifth.heard)
    other = await sim.incoming(from_="+31600000077", to=UTRECHT_NUMBER)
    assert not other.over  # someone else is not affected
    await sim.hangup(other)
    clock.set(START + 13.5 * 3600)  # 00:30 the next day (Amsterdam)
    next_day = await sim.incoming(from_=CALLER, to=UTRECHT_NUMBER)
    assert not next_day.over
    outcomes = sorted(o for o, _ in await records())
    assert outcomes.count("refused") == 1 and outcomes.count("abandoned") == 5


async def test_withheld_numbers_do_not_share_one_limit(sim, line):
    for _ in range(6):
        call = await sim.incoming(from_="+266696687", to=UTRECHT_NUMBER)
        assert not call.over
        await sim.hangup(call)


async def test_national_number_offers_a_region_menu_and_goes_on_without_a_key(sim, line):
    await on_duty(line["carla"])
    call = await sim.incoming(from_=CALLER, to=NATIONAL_NUMBER)  # no key pressed
    assert any("regiocode" in t for t in call.heard)
    state = await state_of(contact_of(sim))
    assert state.home == "*" and state.state == "active"  # national: Carla may take it


async def test_region_code_sets_the_home_branch(sim, line):
    call = await sim.incoming(from_=CALLER, to=NATIONAL_NUMBER, press="09")
    assert not call.over
    state = await state_of(contact_of(sim))
    assert state.home != "*"
