"""The ``listenline`` command line.

* ``listenline demo``: the embedded default, zero configuration.
* ``listenline serve [--workers N]``: production under Daphne, configured only from the
  environment; ``--workers`` (or ``LISTENLINE_WORKERS``) runs N Daphne processes on one
  address (``listenline/workers.py``).
* ``listenline worker``: a Celery worker with beat.
* anything else: a Django management command (``listenline migrate``,
  ``listenline load-geography PATH``); dashes in the command name become underscores.
"""

from __future__ import annotations

import argparse
import io
import os
import secrets
import sys
from collections.abc import Sequence

from listenline.env import env_str, listenline_home

#: Variables ``serve`` needs, with what each is for (printed when one is missing).
REQUIRED_FOR_SERVE = {
    "SECRET_KEY": "a long random secret (or SECRET_KEY_FILE)",
    "DATABASE_URL": "postgres://user:password@host:5432/name",
    "REDIS_URL": "redis://host:6379/0",
    "ALLOWED_HOSTS": "the public host names, comma separated",
    "PUBLIC_BASE_URL": "the public https:// address Twilio and browsers use",
}


def _daphne(host: str, port: int, extra: Sequence[str] = ()) -> None:
    from listenline import daphne_server
    from listenline.workers import daphne_args

    # Verbosity 0 (in daphne_args): no access log, which would print callers' addresses.
    endpoint = ["--bind", host, "--port", str(port)]
    daphne_server.run(daphne_args(endpoint=endpoint, extra=extra))


def serve_config_problems() -> list[str]:
    """What keeps ``serve`` from starting, one line per variable; empty when fine."""
    problems = []
    for name, what in REQUIRED_FOR_SERVE.items():
        if not env_str(name, ""):
            problems.append(f"{name} is not set: {what}")
    secret = env_str("SECRET_KEY", "")
    if secret and (len(secret) < 32 or secret.startswith("insecure")):
        problems.append(
            "SECRET_KEY is too short or a demo default: use at least 32 random characters"
        )
    database = env_str("DATABASE_URL", "")
    if database and not database.startswith(("postgres://", "postgresql://")):
        problems.append(
            "DATABASE_URL must point at PostgreSQL in production (the SQLite file is the demo's)"
        )
    return problems


def cmd_demo(argv: Sequence[str]) -> int:
    parser = argparse.ArgumentParser(prog="listenline demo", description="Run the embedded demo.")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8000)
    args = parser.parse_args(argv)

    home = listenline_home()
    home.mkdir(parents=True, exist_ok=True)
    key_file = home / "secret_key"
    if not key_file.exists():
        key_file.write_text(secrets.token_urlsafe(50), encoding="utf-8")
        key_file.chmod(0o600)
    # The demo is the embedded default whatever the shell says: SQLite, in-process state.
    for name in ("DATABASE_URL", "REDIS_URL", "SECRET_KEY", "SECRET_KEY_FILE", "ROUTING_STORE"):
        os.environ.pop(name, None)
    os.environ["LISTENLINE_EMBEDDED"] = "1"
    os.environ["DJANGO_SETTINGS_MODULE"] = "listenline.settings"
    base = f"http://{args.host}:{args.port}"
    os.environ.setdefault("PUBLIC_BASE_URL", base)
    from telephony.demo import demo_twilio_env  # env wins; else a generated demo token

    demo_twilio_env(home)
    os.environ.setdefault("ALLOWED_HOSTS", f"{args.host},127.0.0.1,localhost,[::1]")

    import django
    from django.core.management import call_command

    django.setup()
    call_command("migrate", interactive=False, verbosity=0)
    call_command("load_geography", verbosity=0, stdout=io.StringIO())
    from volunteers.demo import DEMO_ACCOUNTS, DEMO_PASSWORD, demo_seed

    demo_seed()
    on_start = [f"Listenline demo, data in {home}", ""]
    on_start += [f"  caller page      {base}/", f"  chat             {base}/chat/"]
    on_start += [f"  volunteer console {base}/console/", f"  manager pages    {base}/manage/"]
    on_start += [f"  admin            {base}/admin/", "", f"Logins (password: {DEMO_PASSWORD}):"]
    for account in DEMO_ACCOUNTS:
        where = account.branch_slug or "national"
        on_start.append(f"  {account.username:<16} {account.role.label} ({where})")
    print("\n".join(on_start), flush=True)
    _daphne(args.host, args.port)
    return 0


def cmd_serve(argv: Sequence[str]) -> int:
    parser = argparse.ArgumentParser(prog="listenline serve", description="Serve in production.")
    parser.add_argument("--host", default=os.environ.get("HOST", "0.0.0.0"))  # noqa: S104
    parser.add_argument("--port", type=int, default=int(os.environ.get("PORT", "8000")))
    parser.add_argument(
        "--workers",
        type=int,
        default=int(os.environ.get("LISTENLINE_WORKERS", "1")),
        help="Daphne processes sharing the address (one per core; default 1)",
    )
    args, extra = parser.parse_known_args(argv)
    if args.workers < 1:
        parser.error("--workers must be at least 1")
    problems = serve_config_problems()
    if problems:
        print("listenline serve: refusing to start:", file=sys.stderr)
        for line in problems:
            print(f"  {line}", file=sys.stderr)
        return 2
    os.environ["DJANGO_SETTINGS_MODULE"] = "listenline.settings"
    import django

    django.setup()
    from volunteers.demo import demo_password_in_use

    try:
        in_use = demo_password_in_use()
    except Exception as exc:  # the database is not migrated or not reachable
        print(f"listenline serve: refusing to start: database not ready ({exc})", file=sys.stderr)
        return 2
    if in_use:
        print(
            "listenline serve: refusing to start: demo accounts still use the demo password: "
            + ", ".join(in_use),
            file=sys.stderr,
        )
        return 2
    if args.workers == 1:
        _daphne(args.host, args.port, extra)
        return 0
    from django.db import connections

    from listenline.workers import serve_workers

    # The workers open their own connections; the parent keeps none (nor pool threads).
    for connection in connections.all(initialized_only=True):
        connection.close()
        close_pool = getattr(connection, "close_pool", None)
        if close_pool is not None:
            close_pool()
    return serve_workers(host=args.host, port=args.port, count=args.workers, extra=extra)


def cmd_worker(argv: Sequence[str]) -> int:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "listenline.settings")
    import django

    django.setup()
    from listenline.celery import app

    app.worker_main(["worker", "--beat", "--loglevel", "INFO", *argv])
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    if args and args[0] == "demo":
        return cmd_demo(args[1:])
    if args and args[0] == "serve":
        return cmd_serve(args[1:])
    if args and args[0] == "worker":
        return cmd_worker(args[1:])
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "listenline.settings")
    from django.core.management import execute_from_command_line

    if args and not args[0].startswith("-"):
        args[0] = args[0].replace("-", "_")
    execute_from_command_line(["listenline", *args])
    return 0


if __name__ == "__main__":
    sys.exit(main())
