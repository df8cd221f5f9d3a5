"""Small typed readers for configuration from the environment.

Every secret may also be given as ``NAME_FILE`` pointing at a file (Docker secrets);
the file wins over nothing but loses to an explicit ``NAME``.
"""

from __future__ import annotations

import os
from pathlib import Path


class MissingSetting(Exception):
    """A required setting is absent; the message names the variable."""


def env_str(name: str, default: str = "") -> str:
    value = os.environ.get(name)
    if value is not None:
        return value
    path = os.environ.get(f"{name}_FILE")
    if path:
        return Path(path).read_text(encoding="utf-8").strip()
    return default


def env_bool(name: str, default: bool = False) -> bool:
    raw = env_str(name, "")
    if raw == "":
        return default
    return raw.strip().lower() in {"1", "true", "yes", "on"}


def env_int(name: str, default: int) -> int:
    raw = env_str(name, "")
    return int(raw) if raw.strip() else default


def env_float(name: str, default: float) -> float:
    raw = env_str(name, "")
    return float(raw) if raw.strip() else default


def env_list(name: str, default: list[str] | None = None) -> list[str]:
    raw = env_str(name, "")
    if not raw.strip():
        return list(default or [])
    return [item.strip() for item in raw.split(",") if item.strip()]


def listenline_home() -> Path:
    """The data folder of the embedded demo (SQLite file, generated secret key)."""
    return Path(os.environ.get("LISTENLINE_HOME") or Path.home() / ".listenline")
