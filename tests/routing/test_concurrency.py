"""Two OS processes, several asyncio tasks each, one Redis prefix: no contact answered
twice, no volunteer over capacity, the live state consistent, checked afterwards."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import uuid
from pathlib import Path

import pytest
import redis

from routing.store.redis import RedisStore
from tests.routing.concurrency_worker import VOLUNTEERS
from tests.routing.conftest import REDIS_URL

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.slow
async def test_two_processes_never_double_assign() -> None:
    prefix = f"lltest:rt:conc:{uuid.uuid4().hex[:8]}"
    env = {**os.environ, "PYTHONPATH": str(ROOT), "DJANGO_SETTINGS_MODULE": "tests.settings"}
    procs = [
        subprocess.Popen(  # noqa: ASYNC220 - the test waits for both on purpose
            [sys.executable, "-m", "tests.routing.concurrency_worker", prefix, str(seed), "4"],
            cwd=ROOT,
            env=env,
        )
        for seed in (1, 2)
    ]
    for proc in procs:
        assert proc.wait(timeout=120) == 0  # noqa: ASYNC101
    client = redis.Redis.from_url(REDIS_URL, decode_responses=True)
    store = RedisStore.from_url(REDIS_URL, prefix=prefix)
    try:
        accepts = [a.split() for a in client.lrange(f"{prefix}:t:accepts", 0, -1)]
        trail = [json.loads(t) for t in client.lrange(f"{prefix}:t:trail", 0, -1)]
        assert len(accepts) > 50, "the test did not exercise enough"
        ids = [cid for cid, _ in accepts]
        assert len(ids) == len(set(ids)), "a contact was answered twice"
        assert client.lrange(f"{prefix}:t:over", 0, -1) == []
        answered = [t for t in trail if t["outcome"] == "answered"]
        assert 0 < len(answered) <= len(set(ids))
        held: dict[str, str] = {}
        for vid in VOLUNTEERS:
            v = await store.volunteer_get(volunteer_id=vid)
            assert v is not None
            assert v.load_chat <= v.chat_limit and v.load_phone <= 1
            assert not (v.load_phone and v.load_chat)
            for cid in v.contacts:
                assert cid not in held, f"{cid} held by {held[cid]} and {vid}"
                held[cid] = vid
                c = await store.contact_get(contact_id=cid)
                assert c is not None and vid in (c.offered_to, c.volunteer)
            assert v.load_phone + v.load_chat == len(v.contacts)
    finally:
        await store.clear()
        await store.close()
        client.close()
