"""The Celery application: background and periodic work (``listenline worker``)."""

from __future__ import annotations

import os

from celery import Celery

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "listenline.settings")

app = Celery("listenline")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()
