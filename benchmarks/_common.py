"""Helpers shared by the benchmark scripts: percentiles, goals, the closing JSON line.

Every benchmark prints, as its very last line, one JSON object
``{"benchmark": NAME, "figures": {...}, "goals": [...]}`` (docs: BRIEF "Quality bars")
and exits 0 whether or not a goal is met: a missed goal is a finding, not a crash.
"""

from __future__ import annotations

import json
import math
import os
import platform
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent


def django_setup(*, embedded: bool = True) -> None:
    """Configure Django for a benchmark process.

    ``embedded``: the embedded settings shape (in-process stores, no server needed); the
    database stays whatever ``DATABASE_URL`` says and is only touched if the benchmark
    itself does so.
    """
    if str(REPO) not in sys.path:
        sys.path.insert(0, str(REPO))
    if embedded:
        os.environ.setdefault("LISTENLINE_EMBEDDED", "1")
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "listenline.settings")
    import django

    django.setup()


def percentile(values: Sequence[float], q: float) -> float:
    """The ``q``-quantile (0..1) with linear interpolation between closest ranks."""
    if not values:
        return math.nan
    ordered = sorted(values)
    if len(ordered) == 1:
        return float(ordered[0])
    pos = q * (len(ordered) - 1)
    low = math.floor(pos)
    high = min(low + 1, len(ordered) - 1)
    return float(ordered[low] + (ordered[high] - ordered[low]) * (pos - low))


def goal(name: str, value: float, op: str, target: float) -> dict[str, Any]:
    """One goal as the brief states it; ``met`` is False for a value that is not a number."""
    if op not in (">=", "<="):
        raise ValueError(f"op must be '>=' or '<=', not {op!r}")
    finite = isinstance(value, int | float) and math.isfinite(value)
    met = finite and (value >= target if op == ">=" else value <= target)
    return {
        "name": name,
        "value": value if finite else None,
        "op": op,
        "target": target,
        "met": bool(met),
    }


def machine() -> dict[str, Any]:
    return {
        "python": platform.python_version(),
        "cpus": os.cpu_count(),
        "platform": platform.platform(terse=True),
        # Other work on the machine skews timings; say how busy it was.
        "load_average_1m": round(os.getloadavg()[0], 2),
    }


def result_print(name: str, figures: dict[str, Any], goals: list[dict[str, Any]]) -> None:
    """Print the closing JSON line (and nothing may be printed after it)."""
    sys.stdout.flush()
    print(
        json.dumps(
            {"benchmark": name, "figures": figures, "goals": goals},
            separators=(",", ":"),
            allow_nan=False,
            default=_jsonable,
        ),
        flush=True,
    )


def _jsonable(value: Any) -> Any:
    if isinstance(value, tuple | set | frozenset):
        return list(value)
    raise TypeError(f"not JSON serialisable: {type(value).__name__}")


def rounded(value: float, digits: int = 4) -> float | None:
    return round(value, digits) if math.isfinite(value) else None
