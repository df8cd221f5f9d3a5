"""Test settings: the real PostgreSQL and Redis on this machine unless told otherwise."""

import os

os.environ.setdefault("DATABASE_URL", "postgres://postgres@127.0.0.1:5432/listenline")
os.environ.setdefault("REDIS_URL", "redis://127.0.0.1:6379/0")
os.environ.setdefault("SECRET_KEY", "tests-only-secret-key-that-is-long-enough-0123456789")
os.environ.setdefault("DATABASE_POOL", "0")
os.environ.setdefault("CELERY_TASK_ALWAYS_EAGER", "1")
os.environ.setdefault("CHANNEL_LAYER_PREFIX", "lltest:asgi")
os.environ.setdefault("ROUTING_REDIS_PREFIX", "lltest:rt")

from listenline.settings import *  # noqa: E402, F403

# One test database per pytest process, so several runs on one machine never collide.
DATABASES["default"]["TEST"] = {"NAME": f"test_listenline_{os.getpid()}"}  # noqa: F405

PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
