"""The command line as a newcomer and an operator meet it: real subprocesses."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from listenline.env import env_bool, env_int, env_list, env_str

pytestmark = pytest.mark.slow


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args, **kwargs):  # type: ignore[no-untyped-def]
        return None


def _get(url: str) -> tuple[int, str, str]:
    opener = urllib.request.build_opener(_NoRedirect)
    try:
        with opener.open(url, timeout=5) as response:
            return response.status, response.headers.get("Location", ""), response.read().decode()
    except urllib.error.HTTPError as error:
        return error.code, error.headers.get("Location", ""), ""


def _clean_env(**overrides: str) -> dict[str, str]:
    """The environment of a newcomer's shell: no test settings, no services configured."""
    drop = {"DJANGO_SETTINGS_MODULE", "SECRET_KEY", "DATABASE_URL", "REDIS_URL"}
    env = {k: v for k, v in os.environ.items() if k not in drop}
    env.update(overrides)
    return env


def _start_demo(home: Path, port: int) -> subprocess.Popen[str]:
    env = _clean_env(LISTENLINE_HOME=str(home))
    return subprocess.Popen(
        [sys.executable, "-m", "listenline.cli", "demo", "--port", str(port)],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )


def _wait_until_serving(proc: subprocess.Popen[str], url: str, seconds: float = 60) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            output = proc.stdout.read() if proc.stdout else ""
            raise AssertionError(f"demo exited early ({proc.returncode}):\n{output}")
        try:
            _get(url)
            return
        except OSError:
            time.sleep(0.3)
    raise AssertionError("demo did not start serving in time")


def _stop(proc: subprocess.Popen[str]) -> str:
    proc.terminate()
    try:
        out, _ = proc.communicate(timeout=15)
    except subprocess.TimeoutExpired:
        proc.kill()
        out, _ = proc.communicate()
    return out


def test_demo_serves_the_caller_pages_and_keeps_its_data(tmp_path: Path) -> None:
    port = _free_port()
    base = f"http://127.0.0.1:{port}"
    proc = _start_demo(tmp_path, port)
    try:
        _wait_until_serving(proc, base + "/")
        status, _, body = _get(base + "/")
        assert status == 200 and 'lang="nl"' in body
        assert _get(base + "/chat/")[0] == 200
        status, location, _ = _get(base + "/console/")
        assert status == 302 and location.startswith("/login/")
        assert _get(base + "/static/listenline/css/listenline.css")[0] == 200
    finally:
        first_output = _stop(proc)
    assert "manager.utrecht" in first_output and "/console/" in first_output
    # Daphne's access log would print client addresses; the demo must not.
    assert "127.0.0.1:" not in first_output.replace(base, "")
    database = tmp_path / "listenline.sqlite3"
    assert database.exists()
    key = (tmp_path / "secret_key").read_text()

    proc = _start_demo(tmp_path, port)
    try:
        _wait_until_serving(proc, base + "/")
        assert _get(base + "/")[0] == 200
    finally:
        _stop(proc)
    assert (tmp_path / "secret_key").read_text() == key
    import sqlite3

    with sqlite3.connect(database) as connection:
        users = connection.execute("select count(*) from auth_user").fetchone()[0]
        branches = connection.execute("select count(*) from volunteers_branch").fetchone()[0]
    assert (users, branches) == (5, 30)


def _serve(env_overrides: dict[str, str]) -> subprocess.CompletedProcess[str]:
    env = _clean_env(**env_overrides)
    return subprocess.run(
        [sys.executable, "-m", "listenline.cli", "serve", "--port", str(_free_port())],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_serve_without_secret_key_refuses_and_names_the_variable(tmp_path: Path) -> None:
    result = _serve({"LISTENLINE_HOME": str(tmp_path)})
    assert result.returncode != 0
    assert "SECRET_KEY is not set" in result.stderr
    assert "DATABASE_URL is not set" in result.stderr


def test_serve_refuses_demo_defaults(tmp_path: Path) -> None:
    result = _serve(
        {
            "LISTENLINE_HOME": str(tmp_path),
            "SECRET_KEY": "insecure-not-for-serving",
            "DATABASE_URL": f"sqlite:///{tmp_path}/x.sqlite3",
            "REDIS_URL": "redis://127.0.0.1:6379/0",
            "ALLOWED_HOSTS": "example.org",
            "PUBLIC_BASE_URL": "https://example.org",
        }
    )
    assert result.returncode != 0
    assert "SECRET_KEY is too short or a demo default" in result.stderr
    assert "DATABASE_URL must point at PostgreSQL" in result.stderr


def test_management_commands_run_with_dashes(tmp_path: Path) -> None:
    env = _clean_env(LISTENLINE_HOME=str(tmp_path))
    run = [sys.executable, "-m", "listenline.cli"]
    subprocess.run([*run, "migrate", "-v", "0"], env=env, check=True, timeout=120)
    result = subprocess.run(
        [*run, "load-geography"], env=env, capture_output=True, text=True, check=True, timeout=60
    )
    assert "branches: 30 created" in result.stdout


def test_env_helpers_read_files_for_secrets(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    secret = tmp_path / "secret"
    secret.write_text("from-a-file\n")
    monkeypatch.delenv("SOME_SECRET", raising=False)
    monkeypatch.setenv("SOME_SECRET_FILE", str(secret))
    assert env_str("SOME_SECRET") == "from-a-file"
    monkeypatch.setenv("SOME_SECRET", "explicit")
    assert env_str("SOME_SECRET") == "explicit"
    monkeypatch.setenv("A_BOOL", "yes")
    monkeypatch.setenv("AN_INT", "7")
    monkeypatch.setenv("A_LIST", "a, b,,c")
    assert env_bool("A_BOOL") is True
    assert env_int("AN_INT", 1) == 7
    assert env_list("A_LIST") == ["a", "b", "c"]
