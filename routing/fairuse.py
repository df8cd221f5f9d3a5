"""Fair use without identifying anyone: at most ``FAIR_USE_LIMIT`` contacts per caller
per window, counted under HMAC-SHA256(key of the day, caller key).

Window semantics (documented in docs/ROUTING.md): windows are *fixed*, aligned to local
midnight (``TIME_ZONE``); with the default 24 h window that is the calendar day. So the
5th call within one day is refused and the first call after midnight is not, as the
telephony issue requires. Refused attempts are not counted.

The key of the day is 32 random bytes created on first use, kept only in the routing
store (Redis in production) with a 48 h expiry; it is never written anywhere else. The
raw caller key is only ever an argument of :meth:`FairUse.hit`: it is not stored, logged,
sent to Redis or put in a Celery message; the store only sees the keyed digest.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import math
import zoneinfo

from routing.clock import Clock
from routing.errors import FairUseRefused
from routing.store.base import RoutingStore

KEY_TTL_S = 48 * 3600


class FairUse:
    def __init__(
        self,
        store: RoutingStore,
        clock: Clock,
        *,
        limit: int,
        window_s: int,
        time_zone: str = "Europe/Amsterdam",
        message: str | None = None,
    ) -> None:
        if limit < 1 or window_s < 1:
            raise ValueError("fair use needs a positive limit and window")
        self.store, self.clock = store, clock
        self.limit, self.window_s = limit, window_s
        self.zone = zoneinfo.ZoneInfo(time_zone)
        self.message = message

    @classmethod
    def from_settings(cls, store: RoutingStore, clock: Clock) -> FairUse:
        from django.conf import settings

        return cls(
            store,
            clock,
            limit=settings.FAIR_USE_LIMIT,
            window_s=settings.FAIR_USE_WINDOW_S,
            time_zone=settings.TIME_ZONE,
            message=getattr(settings, "FAIR_USE_MESSAGE", None),
        )

    def _local(self, now: float) -> tuple[str, int]:
        """The key id (local date) and the window number for ``now``."""
        local = dt.datetime.fromtimestamp(now, tz=self.zone)
        offset = local.utcoffset() or dt.timedelta(0)
        bucket = math.floor((now + offset.total_seconds()) / self.window_s)
        return local.date().isoformat(), bucket

    async def hit(self, caller_key: str) -> int:
        """Count one contact for this caller; raise ``FairUseRefused`` past the limit."""
        now = self.clock.now()
        key_id, bucket = self._local(now)
        secret = await self.store.fair_use_key(key_id=key_id, ttl_s=KEY_TTL_S)
        digest = hmac.new(secret, caller_key.strip().encode(), hashlib.sha256).hexdigest()
        count = await self.store.fair_use_hit(
            counter_id=f"{bucket}:{digest}", limit=self.limit, ttl_s=self.window_s + 3600
        )
        if count < 0:
            raise FairUseRefused(self.message)
        return count
