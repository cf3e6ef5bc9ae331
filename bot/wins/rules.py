"""Config checks for Wins and Challenges: a tree of teams (no cycle of parents), someone to write
and choose at each level, and reminders and windows that fit the cadence."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import timedelta
from zoneinfo import ZoneInfo

from bot.clock import wall_time_to_utc
from bot.config import ConfigIssue, OrgCheck, OrgConfig


def parent_cycles(org: OrgConfig) -> Iterable[ConfigIssue]:
    """A team whose chain of parents comes back to it (a → b → a) has no top to roll up to."""
    parents = {t.id: t.parent for t in org.teams}
    reported: set[str] = set()
    for index, team in enumerate(org.teams):
        chain = [team.id]
        current = team.parent
        while current is not None and current in parents and current not in chain:
            chain.append(current)
            current = parents[current]
        if current == team.id and len(chain) > 1 and team.id not in reported:
            reported.update(chain)
            loop = " → ".join([*chain, team.id])
            yield ConfigIssue(("teams", index, "parent"), f"teams form a cycle of parents: {loop}")


def check_wins(org: OrgConfig) -> Iterable[ConfigIssue]:
    yield from parent_cycles(org)
    wins = org.wins
    if wins is None:
        return
    if wins.cadence < timedelta(days=1):
        yield ConfigIssue(
            ("wins", "cadence"), "a cadence shorter than a day leaves no time to write"
        )
    for index, lead in enumerate(wins.reminders):
        if lead <= timedelta(0) or lead >= wins.cadence:
            yield ConfigIssue(
                ("wins", "reminders", index),
                "a reminder comes before the deadline and within the cycle (more than 0, less "
                "than the cadence)",
            )
    if wins.selection_window <= timedelta(0):
        yield ConfigIssue(("wins", "selection_window"), "each level needs some time to choose")
    zone = ZoneInfo(org.timezone)
    first = wins.first_deadline
    if wall_time_to_utc(first, zone).astimezone(zone).replace(tzinfo=None) != first:
        yield ConfigIssue(
            ("wins", "first_deadline"),
            f"{first:%Y-%m-%d %H:%M} does not exist in {org.timezone} (clocks skip it); "
            "pick another time",
            "warning",
        )
    tops = [t for t in org.teams if t.parent is None and any(c.parent == t.id for c in org.teams)]
    if len(tops) > 1:
        yield ConfigIssue(
            ("teams",),
            "Wins and Challenges rolls up to one top team; these have no parent: "
            + ", ".join(t.id for t in tops),
            "warning",
        )
    for index, team in enumerate(org.teams):
        has_children = any(c.parent == team.id for c in org.teams)
        if (team.members or has_children) and not team.managers:
            what = "write its update" if team.members else "choose its highlights"
            yield ConfigIssue(
                ("teams", index, "managers"),
                f"nobody would {what} for Wins and Challenges: give the team a manager",
                "warning",
            )
    if not wins.digest_channel:
        yield ConfigIssue(
            ("wins", "digest_channel"),
            "without a digest channel, team digests go only to team channels and skip managers "
            "see roll-ups only through /wins view",
            "warning",
        )


# Listed for `handlers.CAPABILITIES`, which runs them in `opsbot config check` and at start.
CHECKS: tuple[OrgCheck, ...] = (check_wins,)
