"""What the chat page and the console render: choices and translated strings for the
scripts (passed as JSON data blocks, which the Content-Security-Policy allows)."""

from __future__ import annotations

from typing import Any

from django.utils.translation import gettext as _

from registrations.models import AgeBand, Ending, Gender, Handover, Topic


def chat_page_context() -> dict[str, Any]:
    from volunteers.models import Municipality

    municipalities = list(Municipality.objects.order_by("name").values_list("code", "name"))
    strings = {
        "place": _("You are number %(n)s in the queue."),
        "next": _("You are next."),
        "estimate": _("Expected wait: about %(m)s minutes."),
        "estimate_soon": _("Expected wait: less than a minute."),
        "no_estimate": _("Nobody can say how long it will take right now. You can also call us."),
        "talking_with": _("You are talking with %(alias)s."),
        "joined": _("%(alias)s has joined the conversation."),
        "volunteer_dropped": _("%(alias)s's connection dropped. Please wait a moment."),
        "volunteer_back": _("%(alias)s is back."),
        "transferring": _("We are moving you to another volunteer. You keep your place."),
        "ended_caller": _("You ended the conversation."),
        "ended_volunteer": _("The volunteer ended the conversation."),
        "ended_timeout": _("The conversation ended because the connection was gone too long."),
        "ended": _("The conversation has ended."),
        "sending": _("sending…"),
        "sent": _("sent"),
        "read": _("read"),
        "not_sent": _("not sent"),
        "typing": _("%(alias)s is typing…"),
        "you": _("You"),
        "reconnecting": _("Connection lost. Reconnecting…"),
        "connected": _("Connected."),
        "expired": _("This conversation has ended or expired."),
        "rate_limited": _("You are sending very fast. Wait a moment and try again."),
        "too_long": _("Your message is too long."),
        "error": _("Something went wrong. Please try again."),
        "unknown_municipality": _("Choose a municipality from the list, or leave it empty."),
    }
    return {"municipalities": municipalities, "chat_strings": strings}


def console_page_context(volunteer: Any) -> dict[str, Any]:
    strings = {
        "chat": _("Chat"),
        "phone": _("Phone"),
        "waited": _("waited %(s)s"),
        "talking": _("talking %(s)s"),
        "lasted": _("lasted %(s)s"),
        "offer_announce": _("New contact offered: %(facts)s"),
        "national": _("national (no municipality)"),
        "new_offer": _("New contact offered"),
        "caller": _("Caller"),
        "you": _("You"),
        "typing": _("The caller is typing…"),
        "dropped": _("Your connection dropped; the callers were told."),
        "volunteer_dropped": _("Your connection dropped; the caller was told."),
        "volunteer_back": _("You are back; the caller was told."),
        "transferring": _("The caller is moved to another volunteer."),
        "ended_caller": _("The caller ended the conversation."),
        "ended_volunteer": _("You ended the conversation."),
        "ended_timeout": _("The caller did not come back."),
        "joined": _("You joined the conversation."),
        "wrapup": _("Wrap-up: register this contact"),
        "saved": _("Registration saved."),
        "handover_started": _("Handover to 113 started."),
        "error": _("Refused: %(m)s"),
        "reconnecting": _("Connection lost. Reconnecting…"),
    }
    from volunteers.models import Channel

    taken = set(volunteer.channels) if volunteer else set()
    channels = [(c.value, c.label) for c in (Channel.CHAT, Channel.PHONE) if c.value in taken]
    return {
        "volunteer": volunteer,
        "volunteer_channels": channels,
        "console_strings": strings,
        "topics": Topic.choices,
        "age_bands": AgeBand.choices,
        "genders": Gender.choices,
        "handovers": Handover.choices,
        "endings": Ending.choices,
    }
