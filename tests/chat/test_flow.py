"""The core path through the real ASGI app: start → offer → accept → messages → end →
wrap-up, on PostgreSQL and Redis."""

from __future__ import annotations

from typing import Any

import pytest
from asgiref.sync import sync_to_async

from registrations.models import Registration
from tests.chat.conftest import console_connect, conversation, on_duty

pytestmark = [pytest.mark.django_db(transaction=True)]

WRAPUP = dict(
    topics=["loneliness", "grief"],
    age_band="75_plus",
    gender="woman",
    referral_given=True,
    handed_over="none",
    ending="completed",
)


async def test_conversation_from_start_to_wrapup(chat_env: Any, anna: Any) -> None:
    console = await console_connect("anna")
    await on_duty(console)
    caller, token, cid = await conversation(console)
    joined = caller.frames[-1]
    assert joined["alias"] == "Anna" and joined["seq"] == 1

    await caller.send(type="message", id="c1", text="Hallo")
    own = await caller.expect("message", id="c1")
    assert own["seq"] == 2 and own["from"] == "caller"  # the entry is the acknowledgement
    assert await caller.nothing()  # one frame: no separate ack
    got = await console.expect("message", contact_id=cid)
    assert got["text"] == "Hallo" and got["from"] == "caller" and got["seq"] == 2

    await console.send(type="message", contact_id=cid, id="v1", text="Dag, ik luister.")
    await console.expect("message", contact_id=cid, id="v1")
    reply = await caller.expect("message", seq=3)
    assert reply["text"] == "Dag, ik luister." and reply["from"] == "volunteer"

    await console.send(type="typing", contact_id=cid, active=True)
    assert (await caller.expect("typing"))["active"] is True
    await caller.send(type="seen", upto=3)
    assert (await console.expect("receipt", contact_id=cid))["upto"] == 3

    await console.send(type="contact.end", contact_id=cid)
    ended = await caller.expect("ended")
    assert ended["by"] == "volunteer" and ended["seq"] == 4
    assert (await caller.expect("__close__"))["code"] == 4000
    await console.expect("contact", contact_id=cid, state="wrap_up")

    await console.send(type="wrapup", contact_id=cid, **WRAPUP)
    await console.expect("wrapup.saved", contact_id=cid)
    row = await sync_to_async(Registration.objects.select_related("contact_record").get)()
    assert row.topics == ["loneliness", "grief"] and row.age_band == "75_plus"
    # the registration completes the contact's anonymous trail row
    assert row.contact_record is not None
    assert (row.contact_record.channel, row.contact_record.outcome) == ("chat", "answered")
    await console.close()


async def test_consoles_see_the_queue_change_through_their_process_watch(
    chat_env: Any, anna: Any, bram: Any, carla: Any
) -> None:
    """Branch and national counts reach every console from one read per branch in the
    process (``chat.queue_watch``), not from a group message per console."""
    from chat import queue_watch

    bram_console = await console_connect("bram")  # Utrecht, not on duty
    carla_console = await console_connect("carla")  # Eemland
    first = await bram_console.expect("queue")
    assert first["branch"]["waiting"] == 0 and first["national"]["on_duty"] == 0
    assert len(queue_watch._watch().desks) == 2

    anna_console = await console_connect("anna")
    await on_duty(anna_console)
    # A colleague went on duty: both consoles hear it, each with its own branch.
    seen = await bram_console.expect("queue", wait=5.0)
    while seen["national"]["on_duty"] != 1:
        seen = await bram_console.expect("queue", wait=5.0)
    assert seen["branch"]["on_duty"] == 1
    other = await carla_console.expect("queue", wait=5.0)
    while other["national"]["on_duty"] != 1:
        other = await carla_console.expect("queue", wait=5.0)
    assert other["branch"]["on_duty"] == 0  # Eemland's own count

    # Unchanged counts are not sent again.
    await queue_watch._watch().refresh_desks()
    assert await bram_console.nothing(0.3)

    await bram_console.close()
    await carla_console.close()
    await anna_console.close()
    assert not queue_watch._watch().desks
