"""Read-only lookups the call flow needs from PostgreSQL, cached in-process for a minute.

The incoming-call webhook must answer fast: the map of the line's numbers to branches is
read once a minute, not on every call.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

from asgiref.sync import sync_to_async

CACHE_S = 60.0


@dataclass(frozen=True)
class BranchRef:
    slug: str
    name: str


_cache: dict[str, object] = {"at": -1e18}


def normalise(number: str) -> str:
    return "".join(ch for ch in number if ch.isdigit() or ch == "+")


def _load() -> dict[str, object]:
    from django.db.models import Sum

    from volunteers.models import Branch, Municipality

    names = dict(Branch.objects.values_list("slug", "name"))
    numbers = {
        normalise(number): BranchRef(slug, names[slug])
        for number, slug in Branch.objects.exclude(local_phone_number="").values_list(
            "local_phone_number", "slug"
        )
    }
    regions: dict[str, BranchRef] = {}
    best: dict[str, int] = {}
    rows = Municipality.objects.values("safety_region_code", "branch__slug").annotate(
        people=Sum("population")
    )
    for row in rows:
        code, slug, people = row["safety_region_code"], row["branch__slug"], row["people"] or 0
        digits = "".join(ch for ch in code if ch.isdigit())
        if digits and people > best.get(digits, -1):
            best[digits] = people
            regions[digits] = BranchRef(slug, names[slug])
    return {"at": time.monotonic(), "numbers": numbers, "regions": regions, "names": names}


async def _data() -> dict[str, object]:
    global _cache
    if time.monotonic() - float(_cache["at"]) > CACHE_S:  # type: ignore[arg-type]
        _cache = await sync_to_async(_load)()
    return _cache


def forget() -> None:
    """Drop the cache (tests, after a coordinator changes numbers)."""
    _cache.clear()
    _cache["at"] = -1e18


async def branch_for_number(dialled: str) -> BranchRef | None:
    """The branch whose local number was dialled; None for the national number."""
    numbers: dict[str, BranchRef] = (await _data())["numbers"]  # type: ignore[assignment]
    return numbers.get(normalise(dialled)) if dialled else None


async def branch_for_region(digits: str) -> BranchRef | None:
    """The branch serving most people of a safety region (``07`` → VR07)."""
    regions: dict[str, BranchRef] = (await _data())["regions"]  # type: ignore[assignment]
    return regions.get(digits.zfill(2)) if digits else None


async def branch_name(slug: str) -> str:
    names: dict[str, str] = (await _data())["names"]  # type: ignore[assignment]
    return names.get(slug, "")


async def volunteer_phone(volunteer_id: str) -> str:
    """The number the line calls a volunteer on; empty when none or not taking phone."""
    from volunteers.models import Volunteer

    if not str(volunteer_id).isdigit():
        return ""
    row = await (
        Volunteer.objects.filter(pk=int(volunteer_id), is_active=True, takes_phone=True)
        .values_list("phone_number", flat=True)
        .afirst()
    )
    return row or ""
