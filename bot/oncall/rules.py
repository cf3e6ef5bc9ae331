"""Config checks for rotations: a sane first handoff, and an on-call load people can sustain.

The numbers come from "Operating Platforms" (Platform Engineering, ch. 6): nobody should be on
call more than one week out of four, and ideally not more than one out of every six to eight.
"""

from __future__ import annotations

from collections.abc import Iterable
from fractions import Fraction

from bot.config import ConfigIssue, OrgCheck, OrgConfig
from bot.oncall.schedule import start_weekday_mismatch

HARD_LIMIT = Fraction(1, 4)  # more than this is an error
SOFT_LIMIT = Fraction(1, 6)  # more than this is a warning


def _share_text(share: Fraction) -> str:
    weeks = "1 week" if share.numerator == 1 else f"{share.numerator} weeks"
    return f"{weeks} in {share.denominator} ({float(share):.0%} of the time)"


def check_rotations(org: OrgConfig) -> Iterable[ConfigIssue]:
    for index, rotation in enumerate(org.rotations):
        loc = ("rotations", index)
        mismatch = start_weekday_mismatch(rotation)
        if mismatch is not None:
            yield ConfigIssue((*loc, "start"), mismatch)
        if rotation.reminders and max(rotation.reminders) >= rotation.length * 2:
            yield ConfigIssue(
                (*loc, "reminders"),
                "a reminder earlier than two shifts ahead would name a shift that may still change",
                "warning",
            )
        if rotation.kind != "oncall":
            continue
        counts: dict[str, int] = {}
        for member in rotation.members:
            counts[member] = counts.get(member, 0) + 1
        worst, person = max((count, member) for member, count in counts.items())
        share = Fraction(worst, len(rotation.members))
        if share > HARD_LIMIT:
            yield ConfigIssue(
                (*loc, "members"),
                f"puts {person} on call {_share_text(share)}; nobody should be on call more "
                "than 1 week in 4 (add people to the rotation)",
            )
        elif share > SOFT_LIMIT:
            yield ConfigIssue(
                (*loc, "members"),
                f"puts {person} on call {_share_text(share)}; aim for at most 1 week in 6",
                "warning",
            )


def check_combined_load(org: OrgConfig) -> Iterable[ConfigIssue]:
    """One person in several on-call rotations (a primary and its secondary, two teams) is on
    call for the sum of their shares, which the per-rotation check cannot see."""
    shares: dict[str, dict[int, Fraction]] = {}
    for index, rotation in enumerate(org.rotations):
        if rotation.kind != "oncall" or not rotation.members:
            continue
        for member in rotation.members:
            mine = shares.setdefault(member, {})
            mine[index] = mine.get(index, Fraction(0)) + Fraction(1, len(rotation.members))
    for person, by_rotation in shares.items():
        if len(by_rotation) < 2:
            continue
        total = sum(by_rotation.values(), Fraction(0))
        if total <= HARD_LIMIT:
            continue
        parts = ", ".join(
            f"{org.rotations[i].id} {_share_text(share).split(' (')[0]}"
            for i, share in by_rotation.items()
        )
        first = min(by_rotation)
        yield ConfigIssue(
            ("rotations", first, "members"),
            f"puts {person} on call in {len(by_rotation)} rotations ({parts}): "
            f"{float(total):.0%} of the time combined; nobody should be on call more than "
            "1 week in 4 (the same person written as a Slack id and as an e-mail address is "
            "not counted together)",
            "warning",
        )


# Listed for `handlers.CAPABILITIES`, which runs them in `opsbot config check` and at start.
CHECKS: tuple[OrgCheck, ...] = (check_rotations, check_combined_load)
