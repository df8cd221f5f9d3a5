"""Deleting Call resources at Twilio: backoff on 20009, giving up after a day."""

from __future__ import annotations

import json
import time
from unittest import mock

import pytest

from telephony import tasks
from telephony.simulator import SimCall
from tests.telephony.conftest import ACCOUNT, CALLER

pytestmark = pytest.mark.django_db(transaction=True)


def live_call(sim, status: str = "in-progress") -> SimCall:
    call = SimCall("CA" + "7" * 32, CALLER, "+31301110000", "inbound", status=status)
    sim.calls[call.sid] = call
    return call


def test_backoff_grows_to_an_hour_and_covers_a_day():
    assert [tasks.backoff_s(n) for n in range(8)] == [60, 120, 240, 480, 960, 1920, 3600, 3600]
    assert sum(tasks.backoff_s(n) for n in range(tasks.MAX_RETRIES)) >= 24 * 3600


async def test_a_finished_call_is_deleted_and_a_gone_one_is_fine(sim):
    call = live_call(sim, status="completed")
    assert tasks.call_resource_delete.apply(args=(call.sid, time.time())).get() == "deleted"
    assert call.deleted
    assert tasks.call_resource_delete.apply(args=(call.sid, time.time())).get() == "gone"


async def test_20009_retries_with_backoff_then_gives_up_without_a_number(sim, caplog, monkeypatch):
    # Eager retries re-run at once; propagation would stop the chain at the first one.
    conf = tasks.call_resource_delete.app.conf
    monkeypatch.setitem(conf, "task_eager_propagates", False)
    call = live_call(sim)
    countdowns: list[int] = []
    real = tasks.backoff_s

    def backoff(retries: int) -> int:
        countdowns.append(real(retries))
        return countdowns[-1]

    with mock.patch.object(tasks, "backoff_s", side_effect=backoff):
        result = tasks.call_resource_delete.apply(args=(call.sid, time.time())).get()
    assert result == "gave_up" and not call.deleted
    assert countdowns[:3] == [60, 120, 240] and len(countdowns) == tasks.MAX_RETRIES
    [line] = [r for r in caplog.records if "gave up" in r.getMessage()]
    assert call.sid not in line.getMessage() and CALLER not in line.getMessage()
    assert not any(ch.isdigit() for ch in line.getMessage())


async def test_gives_up_at_once_when_a_day_has_passed(sim):
    call = live_call(sim)
    day_ago = time.time() - 24 * 3600 - 1
    assert tasks.call_resource_delete.apply(args=(call.sid, day_ago)).get() == "gave_up"


async def test_the_task_payload_round_trips_through_json(sim, line):
    from tests.telephony.conftest import UTRECHT_NUMBER

    with mock.patch.object(tasks.call_resource_delete, "apply_async", autospec=True) as queued:
        call = await sim.incoming(from_=CALLER, to=UTRECHT_NUMBER)
        await sim.hangup(call)
    [sent] = queued.call_args_list
    payload = json.loads(json.dumps({"args": sent.kwargs["args"]}))
    assert payload["args"][0] == call.sid and sent.kwargs["countdown"] == 60
    assert tasks.call_resource_delete.apply(args=payload["args"]).get() == "deleted"
    assert sim.rest_log[-1][1].endswith(f"/Accounts/{ACCOUNT}/Calls/{call.sid}.json")
