"""TwiML documents the line answers with. Pure functions: text in, XML out.

Every conference is ``ll-contact-<contact id>``: one per contact, so a volunteer can add
113 to it (warm handover) and drop off. Nothing is ever recorded: ``record`` is set to
``do-not-record`` explicitly wherever Twilio has the attribute.
"""

from __future__ import annotations

import functools
import re
from urllib.parse import urlencode

from django.conf import settings
from django.urls import get_script_prefix, reverse
from django.utils.translation import get_language
from django.utils.translation import gettext as _
from twilio.twiml.voice_response import Dial, Gather, VoiceResponse

NO_RECORDING = "do-not-record"
HOLD_PAUSE_S = 55  # one announcement a minute: this pause plus the spoken text


def say_language() -> str:
    return "en-GB" if (get_language() or "nl").startswith("en") else "nl-NL"


def conference_name(contact_id: str) -> str:
    return f"ll-contact-{contact_id}"


def webhook_url(name: str, **query: str) -> str:
    """Absolute public URL of one of our webhooks (TwiML references must be absolute so
    the simulator and Twilio sign them the same way)."""
    path = reverse(f"telephony:{name}")
    url = f"{settings.PUBLIC_BASE_URL}{path}"
    return f"{url}?{urlencode(query)}" if query else url


def _say(response: VoiceResponse | Gather, text: str) -> None:
    response.say(text, language=say_language())


def crisis_number_spoken() -> str:
    return " ".join(settings.CRISIS_PHONE_NUMBER)


def fallback() -> str:
    """For Twilio's fallback URL: no database, no Redis, just words."""
    response = VoiceResponse()
    _say(
        response,
        _(
            "Welcome to the listening line. All our volunteers are busy right now; "
            "please try again later. If you are in crisis, call %(crisis)s."
        )
        % {"crisis": crisis_number_spoken()},
    )
    response.hangup()
    return str(response)


def refused_fair_use(message: str) -> str:
    response = VoiceResponse()
    _say(response, message)
    response.hangup()
    return str(response)


def region_menu() -> str:
    """The national number's short menu: a region code, or nothing to go on."""
    response = VoiceResponse()
    gather = response.gather(
        input="dtmf", num_digits=2, timeout=4, action=webhook_url("voice-region"), method="POST"
    )
    _say(
        gather,
        _(
            "Welcome to the listening line. To talk to someone from your own region, "
            "key in your two-digit region code now. Or stay on the line."
        ),
    )
    response.redirect(webhook_url("voice-region"), method="POST")
    return str(response)


#: Stands for the contact id in a cached document; contact ids are lowercase hex.
_CONTACT_SLOT = "CONTACTIDSLOT"
_CONTACT_ID = re.compile(r"[0-9a-f]{1,64}")


def caller_hold(contact_id: str, *, greet: bool, requeued: bool = False) -> str:
    """Greet (first time) and wait in the contact's conference until a volunteer joins.

    Every incoming call answers with this document; building it with the ``twilio``
    library cost about a tenth of the webhook's CPU, so it is built once per language
    and configuration with a placeholder for the contact id."""
    if not _CONTACT_ID.fullmatch(contact_id):
        return _caller_hold(contact_id, greet=greet, requeued=requeued)
    document = _caller_hold_cached(
        greet, requeued, get_language(), settings.PUBLIC_BASE_URL, get_script_prefix()
    )
    return document.replace(_CONTACT_SLOT, contact_id)


@functools.lru_cache(maxsize=64)
def _caller_hold_cached(
    greet: bool, requeued: bool, language: str | None, base_url: str, script_prefix: str
) -> str:
    """``_caller_hold`` with the placeholder; the arguments after ``requeued`` are what
    the document depends on besides the contact id (the key of the cache)."""
    return _caller_hold(_CONTACT_SLOT, greet=greet, requeued=requeued)


def _caller_hold(contact_id: str, *, greet: bool, requeued: bool) -> str:
    response = VoiceResponse()
    if requeued:
        _say(
            response,
            _(
                "The connection with your volunteer was lost. Please stay on the line: "
                "you go first to the next free volunteer."
            ),
        )
    elif greet:
        _say(
            response,
            _(
                "Welcome to the listening line. We will connect you with a volunteer as soon "
                "as one is free. You can hang up at any time."
            ),
        )
    dial = Dial(record=NO_RECORDING)
    dial.conference(
        conference_name(contact_id),
        start_conference_on_enter=False,
        end_conference_on_exit=True,
        beep=False,
        record=NO_RECORDING,
        wait_url=webhook_url("voice-hold", contact=contact_id),
        wait_method="POST",
    )
    response.append(dial)
    response.hangup()
    return str(response)


def hold_announcement(contact_id: str, *, position: int | None, wait_minutes: int | None) -> str:
    """Played in the conference's wait loop: place and honest estimate, then a minute of
    music (``TELEPHONY_HOLD_MUSIC_URL``) or silence, then again."""
    response = VoiceResponse()
    if position is not None:
        text = _("You are number %(position)d in line.") % {"position": position}
        if wait_minutes is not None:
            text += " " + (
                _("The expected wait is less than a minute.")
                if wait_minutes < 1
                else _("The expected wait is about %(minutes)d minutes.")
                % {"minutes": wait_minutes}
            )
        _say(response, text)
    music = getattr(settings, "TELEPHONY_HOLD_MUSIC_URL", "")
    if music:
        response.play(music)
    else:
        response.pause(length=HOLD_PAUSE_S)
    response.redirect(webhook_url("voice-hold", contact=contact_id), method="POST")
    return str(response)


def volunteer_whisper(contact_id: str, volunteer_id: str, *, branch_name: str) -> str:
    """What the volunteer hears on answering: press 1 to take the call."""
    response = VoiceResponse()
    query = {"contact": contact_id, "volunteer": volunteer_id}
    gather = response.gather(
        input="dtmf",
        num_digits=1,
        timeout=8,
        action=webhook_url("volunteer-accept", **query),
        method="POST",
    )
    _say(
        gather,
        _("Listenline, a caller from %(branch)s. Press 1 to take the call.")
        % {"branch": branch_name},
    )
    _say(response, _("No key pressed. The caller goes to another volunteer."))
    response.hangup()
    return str(response)


def volunteer_join(contact_id: str) -> str:
    """The volunteer enters the contact's conference and starts it; leaving does not end
    it, so a warm handover to 113 can continue without them."""
    response = VoiceResponse()
    dial = Dial(record=NO_RECORDING)
    dial.conference(
        conference_name(contact_id),
        start_conference_on_enter=True,
        end_conference_on_exit=False,
        beep=False,
        record=NO_RECORDING,
    )
    response.append(dial)
    response.hangup()
    return str(response)


def goodbye(text: str) -> str:
    response = VoiceResponse()
    _say(response, text)
    response.hangup()
    return str(response)


def offer_gone() -> str:
    return goodbye(_("This call has already been taken or has ended. Thank you."))


def call_ended() -> str:
    return goodbye(_("The conversation has ended. Thank you for calling the listening line."))


def empty() -> str:
    return str(VoiceResponse())
