"""The demo's Twilio stand-in settings: a generated auth token the simulator reads.

``listenline demo`` calls :func:`demo_twilio_env` before Django starts: it keeps
``TWILIO_AUTH_TOKEN`` / ``TWILIO_ACCOUNT_SID`` / ``TWILIO_API_BASE_URL`` from the
environment when set, and otherwise generates a token in
``$LISTENLINE_HOME/twilio_demo_token`` and points the REST client at the simulator's
port, so ``listenline simulate-call`` works against the demo out of the box.
"""

from __future__ import annotations

import os
import secrets
from pathlib import Path

DEMO_ACCOUNT_SID = "AC" + "d" * 32
SIMULATOR_PORT = 8765


def demo_token_path(home: Path) -> Path:
    return home / "twilio_demo_token"


def demo_token(home: Path) -> str:
    """The demo's token: created once (0600), then read."""
    path = demo_token_path(home)
    if not path.exists():
        home.mkdir(parents=True, exist_ok=True)
        path.write_text(secrets.token_hex(16), encoding="utf-8")
        path.chmod(0o600)
    return path.read_text(encoding="utf-8").strip()


def demo_twilio_env(home: Path) -> None:
    if not os.environ.get("TWILIO_AUTH_TOKEN") and not os.environ.get("TWILIO_AUTH_TOKEN_FILE"):
        os.environ["TWILIO_AUTH_TOKEN"] = demo_token(home)
        os.environ.setdefault("TWILIO_ACCOUNT_SID", DEMO_ACCOUNT_SID)
        os.environ.setdefault("TWILIO_API_BASE_URL", f"http://127.0.0.1:{SIMULATOR_PORT}")
