"""An org config with many teams and rotations, for the scale benchmarks and tests.

Rotations spread over zones with unusual DST rules, weekly and daily shifts, each with a
secondary, so a timeline covers what real orgs meet.
"""

from __future__ import annotations

ZONES = (
    "America/New_York",
    "Europe/London",
    "Australia/Sydney",
    "Australia/Lord_Howe",
    "Asia/Kathmandu",
    "America/Santiago",
)
WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")


def person(team: int, member: int, emails: bool = False) -> str:
    """A team's member: a Slack id, or for member 0 an e-mail address when `emails`."""
    return f"p{team}@example.com" if emails and member == 0 else f"U{team:05d}{member:03d}"


def scale_users(rotations: int) -> dict[str, dict[str, str]]:
    """Fake Slack users for the e-mail members of `scale_org_text(..., emails=True)`."""
    return {
        f"UMAIL{t:05d}": {"id": f"UMAIL{t:05d}", "name": f"p{t}", "email": f"p{t}@example.com"}
        for t in range((rotations + 1) // 2)
    }


def scale_org_text(rotations: int, members: int = 6, *, emails: bool = False) -> str:
    """YAML for `rotations` on-call rotations, two per team, each the other's secondary."""
    teams = (rotations + 1) // 2
    lines = [
        "timezone: America/New_York",
        "admins: [U0ADMIN0001]",
        "teams:",
    ]
    for t in range(teams):
        people = ", ".join(person(t, m, emails) for m in range(members))
        lines += [
            f"  - id: team-{t}",
            f"    name: Team {t}",
            f"    timezone: {ZONES[t % len(ZONES)]}",
            f"    members: [{people}]",
        ]
    lines.append("rotations:")
    for r in range(rotations):
        t = r // 2
        people = ", ".join(person(t, (m + r) % members, emails) for m in range(members))
        daily = r % 5 == 4
        # 2026-11-02 is a Monday; start on the handoff weekday.
        day = r % 7
        lines += [
            f"  - id: rot-{r}",
            f"    team: team-{t}",
            "    kind: oncall",
            f"    members: [{people}]",
            f"    start: 2026-11-{2 + day:02d}",
            f'    handoff: {{weekday: {WEEKDAYS[day]}, time: "{(9 + r) % 24:02d}:{(r * 15) % 60:02d}"}}',
            f"    length: {'1d' if daily else '1w'}",
        ]
        partner = r + 1 if r % 2 == 0 else r - 1
        if partner < rotations:
            lines.append(f"    secondary: rot-{partner}")
    return "\n".join(lines) + "\n"
