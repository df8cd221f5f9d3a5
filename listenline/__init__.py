"""Listenline: an anonymous listening line on Django, Channels, Redis and Twilio."""

from .celery import app as celery_app

__all__ = ["celery_app"]
__version__ = "0.1.0"
