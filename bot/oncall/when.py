"""Reading the times people type in /oncall commands, in their own time zone."""

from __future__ import annotations

import re
from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from bot.clock import wall_time_to_utc
from bot.durations import parse_duration
from bot.errors import InvalidDuration, InvalidInput

_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")
_TIME = re.compile(r"^\d{1,2}:\d{2}$")

FORMATS = "`2026-11-18 18:00`, `2026-11-18T18:00`, `2026-11-18` or `now`"


def take_instant(
    tokens: list[str], zone: ZoneInfo, now: datetime, *, end_of_day: bool = False
) -> datetime:
    """Consume one instant from the front of `tokens`: a date, a date and time, or `now`.

    A date alone means its midnight, or the end of that day when `end_of_day` (for "to").
    """
    if not tokens:
        raise InvalidInput(f"A time is missing; write {FORMATS}.")
    word = tokens.pop(0)
    if word.lower() == "now":
        return now
    day_text, _, time_text = word.partition("T")
    if not time_text and tokens and _TIME.match(tokens[0]):
        time_text = tokens.pop(0)
    if not _DATE.match(day_text):
        raise InvalidInput(f"'{word}' is not a time; write {FORMATS}.")
    try:
        day = date.fromisoformat(day_text)
        at = time.fromisoformat(time_text.zfill(5)) if time_text else None
    except ValueError:
        raise InvalidInput(f"'{word}' is not a real date or time; write {FORMATS}.") from None
    if at is None:
        day = day + timedelta(days=1) if end_of_day else day
        at = time(0, 0)
    return wall_time_to_utc(datetime.combine(day, at), zone)


def take_end(tokens: list[str], start: datetime, zone: ZoneInfo, now: datetime) -> datetime:
    """The end of a window: an instant like `take_instant`, or a length after the start (4h)."""
    if tokens and not _DATE.match(tokens[0].partition("T")[0]) and tokens[0].lower() != "now":
        word = tokens.pop(0)
        try:
            return start + parse_duration(word)
        except InvalidDuration:
            raise InvalidInput(
                f"'{word}' is neither a time ({FORMATS}) nor a length like 4h or 2d."
            ) from None
    return take_instant(tokens, zone, now, end_of_day=True)


def take_date(tokens: list[str]) -> date | None:
    """An optional date at the front of `tokens`."""
    if not tokens or not _DATE.match(tokens[0]):
        return None
    word = tokens.pop(0)
    try:
        return date.fromisoformat(word)
    except ValueError:
        raise InvalidInput(f"'{word}' is not a real date (YYYY-MM-DD).") from None
