"""Every refusal: a typed error or a documented close code, and nothing changed."""

from __future__ import annotations

import json
from typing import Any

import pytest
from channels.testing import WebsocketCommunicator

from chat.protocol import MAX_TEXT
from chat.store import conversation_store
from listenline.asgi import application
from tests.chat.conftest import (
    ORIGIN,
    caller_connect,
    console_connect,
    conversation,
    on_duty,
)

pytestmark = [pytest.mark.django_db(transaction=True)]


async def test_origin_check_refuses_a_foreign_page(chat_env: Any) -> None:
    comm = WebsocketCommunicator(
        application, "/ws/chat/", headers=[(b"origin", b"https://evil.example")]
    )
    connected, _ = await comm.connect()
    assert not connected


@pytest.mark.parametrize(
    ("raw", "code"),
    [
        ("not json", "malformed"),
        ("[1, 2]", "malformed"),
        ('{"kind": "start"}', "malformed"),
        ('{"type": "shout"}', "unknown_type"),
        ('{"type": "message", "id": "x1"}', "invalid"),
        ('{"type": "message", "id": "bad id!", "text": "hi"}', "invalid"),
        ('{"type": "start", "municipality": "Utrecht"}', "invalid"),
        ('{"type": "start", "extra": 1}', "invalid"),
        ('{"type": "resume", "token": "short", "last_seq": 0}', "invalid"),
        ('{"type": "resume", "token": "' + "a" * 43 + '", "last_seq": 0}', "bad_token"),
        ('{"type": "message", "id": "m1", "text": "hi"}', "no_conversation"),
        ('{"type": "start", "municipality": "GM9999"}', "unknown_municipality"),
    ],
)
async def test_caller_refusals_are_typed(chat_env: Any, raw: str, code: str) -> None:
    caller = await caller_connect()
    await caller.send_raw(raw)
    frame = await caller.next()
    assert frame["type"] == "error" and frame["code"] == code, frame
    # The socket stays usable after a refusal.
    await caller.send(type="ping")
    assert (await caller.next())["type"] == "pong"
    await caller.close()


async def test_console_refuses_anonymous_and_non_volunteers(chat_env: Any, mia: Any) -> None:
    comm = WebsocketCommunicator(application, "/ws/console/", headers=ORIGIN)
    connected, _ = await comm.connect()
    assert connected
    assert (await comm.receive_output(2))["code"] == 4401
    from tests.chat.conftest import session_cookie

    cookie = await session_cookie("mia")
    comm = WebsocketCommunicator(
        application, "/ws/console/", headers=[*ORIGIN, (b"cookie", cookie)]
    )
    await comm.connect()
    assert (await comm.receive_output(2))["code"] == 4403


async def test_too_long_text_and_rate_limit_change_nothing(chat_env: Any, anna: Any) -> None:
    console = await console_connect("anna")
    await on_duty(console)
    caller, _token, cid = await conversation(console)
    before = await conversation_store().last_seq(contact_id=cid)

    await caller.send(type="message", id="long", text="x" * (MAX_TEXT + 1))
    err = await caller.expect("error")
    assert err["code"] == "too_long" and err["ref"] == "long"
    assert await conversation_store().last_seq(contact_id=cid) == before

    for n in range(25):
        await caller.send(type="message", id=f"r{n}", text=f"bericht {n}")
    frames = []
    while not await caller.nothing(0.5):
        frames.append(await caller.next())
    codes = [f.get("code") for f in frames if f["type"] == "error"]
    # 20 frames per 10 s: 'start' and the long message used two, so 18 pass, 7 are refused.
    assert codes.count("rate_limited") == 7
    assert await conversation_store().last_seq(contact_id=cid) == before + 18
    await caller.close()
    await console.close()


async def test_flooding_closes_with_4429(chat_env: Any) -> None:
    caller = await caller_connect()
    for _ in range(61):
        await caller.send(type="ping")
    frames = [await caller.next() for _ in range(61)]
    assert frames[-1] == {"type": "__close__", "code": 4429}


async def test_console_refusals(chat_env: Any, anna: Any, bram: Any) -> None:
    console = await console_connect("anna")
    await on_duty(console)
    caller, _token, cid = await conversation(console)
    other = await console_connect("bram")
    await other.send(type="message", contact_id=cid, id="b1", text="mag ik?")
    assert (await other.expect("error"))["code"] == "not_yours"
    await other.send(type="contact.end", contact_id=cid)
    assert (await other.expect("error"))["code"] == "not_yours"
    await console.send(
        type="wrapup",
        contact_id=cid,
        topics=["nope"],
        age_band="75_plus",
        gender="man",
        referral_given=False,
        handed_over="none",
        ending="completed",
    )
    assert (await console.expect("error"))["code"] == "invalid"
    await console.send(
        type="wrapup",
        contact_id=cid,
        topics=["other"],
        age_band="75_plus",
        gender="man",
        referral_given=False,
        handed_over="none",
        ending="completed",
    )
    assert (await console.expect("error"))["code"] == "wrong_state"
    await console.send(type="contact.handover", contact_id=cid)
    assert (await console.expect("error"))["code"] == "phone_only"
    await console.send(type="offer.accept", contact_id="nope")
    assert (await console.expect("error"))["type"] == "error"
    await console.send_raw(json.dumps({"type": "presence", "channel": "fax", "state": "x"}))
    assert (await console.expect("error"))["code"] == "invalid"
    for peer in (caller, console, other):
        await peer.close()
