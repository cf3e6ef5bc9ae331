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


def scale_org_text(rotations: int, members: int = 6) -> str:
    """YAML for `rotations` on-call rotations, two per team, each the other's secondary."""
    teams = (rotations + 1) // 2
    lines = [
        "timezone: America/New_York",
        "admins: [U0ADMIN0001]",
        "teams:",
    ]
    for t in range(teams):
        people = ", ".join(f"U{t:05d}{m:03d}" for m in range(members))
        lines += [
            f"  - id: team-{t}",
            f"    name: Team {t}",
            f"    timezone: {ZONES[t % len(ZONES)]}",
            f"    members: [{people}]",
        ]
    lines.append("rotations:")
    for r in range(rotations):
        t = r // 2
        people = ", ".join(f"U{t:05d}{(m + r) % members:03d}" for m in range(members))
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
