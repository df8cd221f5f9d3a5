"""Telephony fixtures: signed Twilio settings, a routing engine on real Redis with a
manual clock, and the Twilio simulator wired to the app in-process.

Volunteers: Anna and Bram (Utrecht) take calls on their phones; Carla (Eemland) too.
Utrecht has a local number; the national number is anything else.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Iterator
from typing import Any

import pytest
from asgiref.sync import sync_to_async

from routing import services as routing
from routing.clock import ManualClock
from routing.store.redis import RedisStore
from telephony import callout, directory
from telephony.simulator import Simulator
from telephony.simulator.inprocess import ACTIVE, django_app
from volunteers.models import Branch, Volunteer

REDIS_URL = "redis://127.0.0.1:6379/0"
TOKEN = "sim-auth-token-0123456789abcdef"  # noqa: S105
ACCOUNT = "AC" + "1" * 32
BASE = "https://line.example.org"
UTRECHT_NUMBER = "+31301110000"
NATIONAL_NUMBER = "+31900076700"
ANNA_PHONE = "+31611110001"
BRAM_PHONE = "+31611110002"
CARLA_PHONE = "+31611110003"
CALLER = "+31687654321"
START = 1_767_261_600.0  # 2026-01-01 11:00 Amsterdam


@pytest.fixture
def phone_settings(settings: Any) -> Any:
    settings.TWILIO_AUTH_TOKEN = TOKEN
    settings.TWILIO_ACCOUNT_SID = ACCOUNT
    settings.PUBLIC_BASE_URL = BASE
    settings.TWILIO_API_BASE_URL = ""
    settings.TWILIO_HTTP_TRANSPORT = "telephony.simulator.inprocess.InProcessTransport"
    settings.TELEPHONY_REDIS_PREFIX = f"lltest:tel:{uuid.uuid4().hex[:12]}"
    settings.LINE_PHONE_NUMBER = NATIONAL_NUMBER
    settings.CRISIS_PHONE_NUMBER = "113"
    settings.TELEPHONY_REGION_MENU = True
    return settings


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock(START)


@pytest.fixture
async def engine(phone_settings: Any, clock: ManualClock) -> AsyncIterator[Any]:
    store = RedisStore.from_url(REDIS_URL, prefix=f"lltest:rt:{uuid.uuid4().hex[:12]}")
    await store.clear()
    engine = routing.build_engine(store=store, clock=clock)
    routing.set_engine(engine)
    yield engine
    routing.set_engine(None)
    await callout.drain()
    await store.clear()
    await store.close()
    import redis.asyncio as aioredis

    client = aioredis.Redis.from_url(REDIS_URL)
    async for key in client.scan_iter(match=f"{phone_settings.TELEPHONY_REDIS_PREFIX}:*"):
        await client.delete(key)
    await client.aclose()


@pytest.fixture
def line(
    transactional_db: None, geography: None, anna: Volunteer, bram: Volunteer, carla: Volunteer
) -> Iterator[dict[str, Volunteer]]:
    Branch.objects.filter(slug="utrecht").update(local_phone_number=UTRECHT_NUMBER)
    for volunteer, number in ((anna, ANNA_PHONE), (bram, BRAM_PHONE), (carla, CARLA_PHONE)):
        volunteer.phone_number = number
        volunteer.save()
    directory.forget()
    yield {"anna": anna, "bram": bram, "carla": carla}
    directory.forget()


@pytest.fixture
async def sim(engine: Any, line: dict[str, Volunteer]) -> AsyncIterator[Simulator]:
    simulator = Simulator(
        token=TOKEN,
        public_base_url=BASE,
        app=django_app(),
        account_sid=ACCOUNT,
        settle_hook=callout.drain,
    )
    ACTIVE.append(simulator)
    yield simulator
    ACTIVE.remove(simulator)


async def on_duty(*volunteers: Volunteer) -> None:
    for volunteer in volunteers:
        await routing.volunteer_presence_set(
            volunteer_id=volunteer.pk, channel="phone", state="available"
        )
    await callout.drain()


def contact_of(sim: Simulator) -> str:
    """The contact id of the (only or latest) caller's conference."""
    names = [n for n in sim.conferences]
    assert names, "no conference yet"
    return names[-1].removeprefix("ll-contact-")


async def state_of(contact_id: str) -> Any:
    return await routing.get_engine().store.contact_get(contact_id=contact_id)


@sync_to_async
def records() -> list[tuple[str, int | None]]:
    from routing.models import ContactRecord

    return list(ContactRecord.objects.values_list("outcome", "overflow_distance"))
