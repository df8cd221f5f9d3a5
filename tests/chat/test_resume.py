"""Once only, in order: resume with exact replay, duplicates once, drops on both sides."""

from __future__ import annotations

import asyncio
import dataclasses
from typing import Any

import pytest

from chat.store import conversation_store
from tests.chat.conftest import caller_connect, console_connect, conversation, on_duty

pytestmark = [pytest.mark.django_db(transaction=True)]


async def test_resume_replays_exactly_what_was_missed(chat_env: Any, anna: Any) -> None:
    console = await console_connect("anna")
    await on_duty(console)
    caller, token, cid = await conversation(console)
    await caller.send(type="message", id="c1", text="een")
    await caller.expect("message", seq=2)
    await caller.close()  # the caller's network drops

    for n in range(3):
        await console.send(type="message", contact_id=cid, id=f"v{n}", text=f"terug {n}")
        await console.expect("message", id=f"v{n}")

    again = await caller_connect()
    await again.send(type="resume", token=token, last_seq=2)
    session = await again.expect("session")
    assert session["state"] == "active" and session["alias"] == "Anna"
    got = [await again.expect("message") for _ in range(3)]
    assert [m["seq"] for m in got] == [3, 4, 5]
    assert [m["text"] for m in got] == ["terug 0", "terug 1", "terug 2"]
    assert await again.nothing()

    # A retry of a message the server already has is acknowledged, not stored twice.
    await again.send(type="message", id="c1", text="een")
    ack = await again.expect("ack", id="c1")
    assert ack == {"type": "ack", "id": "c1", "seq": 2, "duplicate": True}
    assert await conversation_store().last_seq(contact_id=cid) == 5
    assert await again.nothing()
    await again.close()
    await console.close()


async def test_console_resync_replays_per_conversation(chat_env: Any, anna: Any) -> None:
    console = await console_connect("anna")
    await on_duty(console)
    caller, _token, cid = await conversation(console)
    await console.close()
    await caller.send(type="message", id="c1", text="ben je er nog?")
    await caller.expect("message", id="c1")
    back = await console_connect("anna", sync=False)
    await back.send(type="sync", last_seq={cid: 1})
    state = await back.expect("state")
    assert [c["contact_id"] for c in state["contacts"]] == [cid]
    msg = await back.expect("message", contact_id=cid)
    assert msg["seq"] >= 2
    await caller.close()
    await back.close()


async def test_volunteer_drop_notice_and_requeue(
    chat_env: Any, anna: Any, bram: Any, settings: Any
) -> None:
    chat_env.policy = dataclasses.replace(chat_env.policy, drop_grace_s=0.5)
    anna_console = await console_connect("anna")
    await on_duty(anna_console)
    caller, _token, cid = await conversation(anna_console)
    await anna_console.close()
    notice = await caller.expect("notice")
    assert notice["code"] == "volunteer_dropped"

    bram_console = await console_connect("bram")
    await on_duty(bram_console)
    await asyncio.sleep(0.6)
    await chat_env.tick()
    moved = await caller.expect("notice", wait=5)
    assert moved["code"] == "transferring"
    offer = await bram_console.expect("offer", contact_id=cid, wait=5)
    await bram_console.send(type="offer.accept", contact_id=offer["contact_id"])
    joined = await caller.expect("joined")
    assert joined["alias"] == "Bram"
    await caller.send(type="message", id="c2", text="fijn")
    await bram_console.expect("message", contact_id=cid)
    await caller.close()
    await bram_console.close()


async def test_caller_drop_then_timeout_ends_and_deletes(chat_env: Any, anna: Any) -> None:
    console = await console_connect("anna")
    await on_duty(console)
    caller, token, cid = await conversation(console)
    await caller.close()
    ended = await console.expect("ended", contact_id=cid, wait=6)
    assert ended["by"] == "timeout"
    await console.expect("contact", contact_id=cid, state="wrap_up")
    assert await conversation_store().last_seq(contact_id=cid) == 0
    late = await caller_connect()
    await late.send(type="resume", token=token, last_seq=0)
    assert (await late.expect("error"))["code"] == "bad_token"
    await late.close()
    await console.close()


async def test_caller_back_within_grace_keeps_the_conversation(chat_env: Any, anna: Any) -> None:
    console = await console_connect("anna")
    await on_duty(console)
    caller, token, cid = await conversation(console)
    await caller.close()
    await asyncio.sleep(1.0)
    again = await caller_connect()
    await again.send(type="resume", token=token, last_seq=1)
    assert (await again.expect("session"))["state"] == "active"
    await asyncio.sleep(1.5)  # past the 2 s grace counted from the drop
    await console.send(type="message", contact_id=cid, id="v1", text="nog steeds hier")
    assert (await again.expect("message"))["text"] == "nog steeds hier"
    await again.close()
    await console.close()


async def test_waiting_caller_sees_place_and_resumes_it(chat_env: Any) -> None:
    first = await caller_connect()
    await first.send(type="start")
    await first.expect("session", state="waiting")
    assert (await first.expect("queue"))["position"] == 1
    second = await caller_connect()
    await second.send(type="start", municipality="GM0344")
    token = (await second.expect("session"))["token"]
    assert (await second.expect("queue"))["position"] in (1, 2)
    await second.close()
    again = await caller_connect()
    await again.send(type="resume", token=token, last_seq=0)
    await again.expect("session", state="waiting")
    await again.expect("queue")
    await again.send(type="end")
    assert (await again.expect("ended"))["by"] == "caller"
    for peer in (first, again):
        await peer.close()


@pytest.mark.slow
async def test_idle_socket_survives_more_than_ten_seconds(chat_env: Any, anna: Any) -> None:
    """channels_redis #422: with redis-py's 5 s socket timeout idle consumers got 1011."""
    console = await console_connect("anna")
    await on_duty(console)
    caller, _token, cid = await conversation(console)
    assert await caller.nothing(11.0), await caller.next()
    await console.send(type="message", contact_id=cid, id="v1", text="nog wakker?")
    assert (await caller.expect("message"))["text"] == "nog wakker?"
    await caller.send(type="message", id="c1", text="ja hoor")
    assert (await console.expect("message", contact_id=cid, **{"from": "caller"}))[
        "text"
    ] == "ja hoor"
    await caller.close()
    await console.close()


async def test_batched_queue_places_match_single_reads(chat_env: Any) -> None:
    """The queue watcher's one batched read answers what per-caller reads answer."""
    from chat import engine
    from chat.queue_watch import _watches

    callers = []
    for _ in range(3):
        caller = await caller_connect()
        await caller.send(type="start")
        await caller.expect("session", state="waiting")
        await caller.expect("queue")
        callers.append(caller)
    waiting = [cid for watch in _watches.values() for cid in watch.callers.values()]
    assert len(waiting) == 3
    batched = await engine.queue_positions(contact_ids=[*waiting, "no-such-contact"])
    assert batched["no-such-contact"] is None
    for cid in waiting:
        assert batched[cid] == await engine.queue_position(contact_id=cid)
    assert sorted(p.position for p in batched.values() if p) == [1, 2, 3]
    for caller in callers:
        await caller.close()
