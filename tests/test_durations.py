"""Durations as people write them (15m, 4h, 1d, 2w, 1h30m), and back to the shortest text."""

from __future__ import annotations

from datetime import timedelta

import pytest

from bot.durations import format_duration, parse_duration
from bot.errors import InvalidDuration, InvalidInput


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("15m", timedelta(minutes=15)),
        ("4h", timedelta(hours=4)),
        ("1d", timedelta(days=1)),
        ("2w", timedelta(weeks=2)),
        ("90s", timedelta(seconds=90)),
        ("1h30m", timedelta(hours=1, minutes=30)),
        ("1h 30m", timedelta(hours=1, minutes=30)),
        ("1w2d", timedelta(days=9)),
        (" 15m ", timedelta(minutes=15)),
        ("15M", timedelta(minutes=15)),
        ("0m", timedelta(0)),
        ("0d", timedelta(0)),
        (0, timedelta(0)),
        (timedelta(minutes=7), timedelta(minutes=7)),
    ],
)
def test_durations_people_write_are_parsed(text, expected):
    assert parse_duration(text) == expected


@pytest.mark.parametrize(
    "text",
    ["", "15", "m", "1.5h", "-5m", "15 minutes", "15m!", "h1", "1y", 15, 1.5, True, None],
)
def test_anything_else_is_an_invalid_duration(text):
    with pytest.raises(InvalidDuration) as raised:
        parse_duration(text)
    assert f"'{text}' is not a duration" in str(raised.value)
    assert isinstance(raised.value, InvalidInput)  # handlers show it to the user as is


@pytest.mark.parametrize(
    ("delta", "text"),
    [
        (timedelta(0), "0m"),
        (timedelta(seconds=45), "45s"),
        (timedelta(minutes=15), "15m"),
        (timedelta(hours=1, minutes=30), "1h 30m"),
        (timedelta(days=1, hours=4), "1d 4h"),
        (timedelta(weeks=2), "2w"),
        (timedelta(days=8), "1w 1d"),
        (timedelta(minutes=-5), "-5m"),
        (timedelta(hours=-26), "-1d 2h"),
        (timedelta(minutes=1, seconds=30), "1m"),  # seconds only matter under a minute
    ],
)
def test_durations_are_formatted_in_the_shortest_readable_form(delta, text):
    assert format_duration(delta) == text


@pytest.mark.parametrize("text", ["15m", "4h", "1d", "2w", "1w 1d", "1d 4h", "1h 30m"])
def test_formatting_a_parsed_duration_gives_it_back(text):
    assert format_duration(parse_duration(text)) == text


def test_a_parsed_duration_remembers_the_weeks_and_days_written_as_such():
    one_day = parse_duration("1d")
    day_in_hours = parse_duration("24h")
    assert one_day == day_in_hours  # the same length of time ...
    assert (one_day.weeks_written, one_day.days_written) == (0, 1)  # ... written differently
    assert (day_in_hours.weeks_written, day_in_hours.days_written) == (0, 0)
    mixed = parse_duration("1w2d3h")
    assert (mixed.weeks_written, mixed.days_written) == (1, 2)
    assert mixed.below_a_day == timedelta(hours=3)
