"""Celery tasks of the phone line. They take ids only (a CallSid and a time)."""

from __future__ import annotations

import logging
import time
from typing import Any

import requests
from celery import shared_task

from telephony.rest import NOT_COMPLETE_YET, NOT_FOUND, TwilioRestException, rest_client

logger = logging.getLogger(__name__)
GIVE_UP_AFTER_S = 24 * 3600
BACKOFF_FIRST_S = 60
BACKOFF_MAX_S = 3600


def backoff_s(retries: int) -> int:
    """60 s, 2 min, 4 min, ... capped at an hour."""
    return int(min(BACKOFF_FIRST_S * 2 ** min(retries, 12), BACKOFF_MAX_S))


def _retries_for_a_day() -> int:
    total, n = 0, 0
    while total < GIVE_UP_AFTER_S:
        total += backoff_s(n)
        n += 1
    return n


MAX_RETRIES = _retries_for_a_day()


@shared_task(bind=True, max_retries=None, acks_late=True, ignore_result=True)
def call_resource_delete(task: Any, call_sid: str, first_attempt_at: float) -> str:
    """Delete one Call resource at Twilio (its log holds the numbers of both ends).

    Twilio refuses with error 20009 until the call is final, and the network may fail:
    retry with backoff, give up after a day (by the clock or by the retry count) with a
    log line that names neither number nor CallSid. Already gone (404) counts as done;
    any other refusal is permanent. Returns ``deleted``, ``gone``, ``failed`` or
    ``gave_up``.
    """
    try:
        rest_client(asynchronous=False).calls(call_sid).delete()
        return "deleted"
    except TwilioRestException as exc:
        if exc.status == 404 or exc.code == NOT_FOUND:
            return "gone"
        if exc.code != NOT_COMPLETE_YET and exc.status < 500:
            logger.warning(
                "telephony: Twilio refused to delete a Call resource (code %s)", exc.code
            )
            return "failed"
    except requests.RequestException:
        pass  # the network: worth another try
    retries = int(task.request.retries or 0)
    if time.time() - first_attempt_at >= GIVE_UP_AFTER_S or retries >= MAX_RETRIES:
        logger.error(
            "telephony: gave up deleting a Call resource at Twilio after a day of retries; "
            "delete finished calls by hand in the Twilio console"
        )
        return "gave_up"
    raise task.retry(countdown=backoff_s(retries))
