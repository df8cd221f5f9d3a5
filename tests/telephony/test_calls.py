"""Whole calls through the simulator against real PostgreSQL and Redis."""

from __future__ import annotations

import pytest

from routing import services as routing
from tests.telephony.conftest import (
    ANNA_PHONE,
    CALLER,
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
