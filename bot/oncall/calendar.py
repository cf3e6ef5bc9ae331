"""iCalendar feeds of a rotation's shifts, and the per-rotation tokens that guard them.

A feed's token is an HMAC of the rotation id keyed with the Slack signing secret: nothing to
store, stable across replicas and restarts, different for every rotation. Rotating the signing
secret revokes every feed URL.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Callable, Sequence
from datetime import datetime, timedelta

import icalendar

from bot.config import Rotation
from bot.oncall.service import Segment

FEED_LENGTH = timedelta(days=183)  # "the next 6 months"


def feed_token(secret: str, rotation_id: str) -> str:
    digest = hmac.new(secret.encode(), f"oncall-calendar:{rotation_id}".encode(), hashlib.sha256)
    return digest.hexdigest()[:32]


def token_matches(secret: str, rotation_id: str, token: str) -> bool:
    return hmac.compare_digest(feed_token(secret, rotation_id), token)


def feed_url(public_url: str, secret: str, rotation_id: str) -> str:
    return f"{public_url.rstrip('/')}/calendars/{rotation_id}.ics?token={feed_token(secret, rotation_id)}"


def feed(
    rotation: Rotation,
    zone_name: str,
    segments: Sequence[Segment],
    name_of: Callable[[str], str],
    now: datetime,
) -> bytes:
    """One event per shift (overrides applied), in UTC, with the rotation's zone named."""
    calendar = icalendar.Calendar()
    calendar.add("prodid", "-//opsbot//on-call//EN")
    calendar.add("version", "2.0")
    calendar.add("calscale", "GREGORIAN")
    calendar.add("x-wr-calname", f"On call: {rotation.id}")
    calendar.add("x-wr-timezone", zone_name)
    for segment in segments:
        person = name_of(segment.person)
        event = icalendar.Event()
        event.add("uid", f"{rotation.id}-{segment.start:%Y%m%dT%H%M%SZ}@opsbot")
        event.add("dtstamp", now)
        event.add("dtstart", segment.start)
        event.add("dtend", segment.end)
        event.add("summary", f"{rotation.id}: {person}")
        cover = ""
        if segment.override_id is not None and segment.scheduled != segment.person:
            cover = f" (covering {name_of(segment.scheduled)})"
        event.add(
            "description",
            f"{person} is on call for {rotation.id}{cover}. Handoffs are at "
            f"{rotation.handoff.time:%H:%M} {zone_name}.",
        )
        event.add("transp", "TRANSPARENT")
        calendar.add_component(event)
    return calendar.to_ical()
