"""Test settings: the real PostgreSQL and Redis on this machine unless told otherwise."""

import os

os.environ.setdefault("DATABASE_URL", "postgres://postgres@127.0.0.1:5432/listenline")
os.environ.setdefault("REDIS_URL", "redis://127.0.0.1:6379/0")
os.environ.setdefault("SECRET_KEY", "tests-only-secret-key-that-is-long-enough-0123456789")
os.environ.setdefault("DATABASE_POOL", "0")
os.environ.setdefault("CELERY_TASK_ALWAYS_EAGER", "1")
# Redis prefixes per pytest process (written to os.environ, so the servers the tests
# start as subprocesses share them), so several runs on one machine never collide.
_run = f"lltest{os.getpid()}"
os.environ.setdefault("CHANNEL_LAYER_PREFIX", f"{_run}:asgi")
os.environ.setdefault("ROUTING_REDIS_PREFIX", f"{_run}:rt")
os.environ.setdefault("CHAT_REDIS_PREFIX", f"{_run}:chat")
os.environ.setdefault("TELEPHONY_REDIS_PREFIX", f"{_run}:tel")

from listenline.settings import *  # noqa: E402, F403

# One test database per pytest process, so several runs on one machine never collide.
DATABASES["default"]["TEST"] = {"NAME": f"test_listenline_{os.getpid()}"}  # noqa: F405

PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
