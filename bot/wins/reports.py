"""Records: participation per cycle (on time, late, not at all), the archive of digests, and the
quarter's entries as Markdown for business and performance reviews."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

from sqlmodel import Session, col, select

from bot.clock import wall_time_to_utc
from bot.config import OrgConfig
from bot.runtime import Runtime
from bot.wins import tree
from bot.wins.cycles import CycleCalendar, period_text, quarter_days
from bot.wins.models import ACCEPTED, WIN, WinsCycle, WinsDigest, WinsEntry, WinsSubmission

ON_TIME, LATE, MISSING = "on time", "late", "not submitted"


@dataclass(frozen=True)
class Participation:
    team_id: str
    state: str
    no_update: bool = False


def participation(
    session: Session, runtime: Runtime, cycle: WinsCycle, under: str | None = None
) -> list[Participation]:
    org = runtime.org
    teams = tree.line_teams(org)
    if under is not None:
        below = {t.id for t in tree.descendants(org, under)} | {under}
        teams = [t for t in teams if t.id in below]
    submitted = {
        s.team_id: s
        for s in session.exec(
            select(WinsSubmission).where(WinsSubmission.cycle_id == cycle.id)
        ).all()
    }
    rows = []
    for team in teams:
        found = submitted.get(team.id)
        if found is None:
            rows.append(Participation(team.id, MISSING))
        else:
            state = ON_TIME if found.submitted_at <= cycle.deadline else LATE
            rows.append(Participation(team.id, state, found.no_update))
    return rows


def participation_counts_text(rows: list[Participation], deadline: str) -> str:
    """For the digest channel: counts only, never a public list of names."""
    on_time = sum(r.state == ON_TIME for r in rows)
    late = sum(r.state == LATE for r in rows)
    missing = sum(r.state == MISSING for r in rows)
    return (
        f"Wins and Challenges for {deadline} are published. "
        f"Participation: {on_time} of {len(rows)} teams on time, {late} late, "
        f"{missing} not submitted. Thank you, everyone who wrote."
    )


def participation_names_text(org: OrgConfig, rows: list[Participation], deadline: str) -> str:
    """For the top manager only: who submitted on time, late, or not at all."""
    lines = [f"*Participation for {deadline}* (only you see this)"]
    for state in (ON_TIME, LATE, MISSING):
        names = [
            org.team(r.team_id).name + (" (no update)" if r.no_update else "")
            for r in rows
            if r.state == state
        ]
        lines.append(f"• {state.capitalize()}: {', '.join(names) if names else 'none'}")
    return "\n".join(lines)


# ---- the quarter's record ---------------------------------------------------------------------


def quarter_cycles(session: Session, org: OrgConfig, quarter: str) -> list[WinsCycle]:
    first, last = quarter_days(quarter)
    zone = CycleCalendar.of(org).zone
    from datetime import datetime

    start = wall_time_to_utc(datetime.combine(first, datetime.min.time()), zone)
    end = wall_time_to_utc(datetime.combine(last + timedelta(days=1), datetime.min.time()), zone)
    return list(
        session.exec(
            select(WinsCycle)
            .where(WinsCycle.deadline >= start, WinsCycle.deadline < end)
            .order_by(col(WinsCycle.number))
        ).all()
    )


def export_markdown(
    session: Session, org: OrgConfig, quarter: str, team_id: str | None = None
) -> str:
    """The quarter's entries, grouped by team and cycle: the book's "record of what really
    happened over the quarter" for business and performance reviews."""
    quarter = quarter.strip().upper()
    cycles = quarter_cycles(session, org, quarter)
    teams = [org.team(team_id)] if team_id else tree.line_teams(org)
    zone = CycleCalendar.of(org).zone
    period = period_text(org)
    lines = [f"# Wins and Challenges, {quarter}", ""]
    if team_id:
        lines[0] += f": {org.team(team_id).name}"
    if not cycles:
        lines.append(f"No cycle ended in {quarter}.")
        return "\n".join(lines) + "\n"
    for team in teams:
        lines += [f"## {team.name}", ""]
        for cycle in cycles:
            entries = session.exec(
                select(WinsEntry)
                .where(
                    WinsEntry.cycle_id == cycle.id,
                    WinsEntry.team_id == team.id,
                    WinsEntry.status == ACCEPTED,
                    col(WinsEntry.deleted_at).is_(None),
                )
                .order_by(col(WinsEntry.kind).desc(), col(WinsEntry.id))
            ).all()
            if not entries and cycle.closed_at is None:
                continue  # still collecting, nothing written yet
            day = cycle.deadline.astimezone(zone).strftime("%d %b %Y")
            lines += [f"### {period.capitalize()} to {day}", ""]
            if not entries:
                lines += ["No entries.", ""]
                continue
            for heading, kind in (("Wins", WIN), ("Challenges", None)):
                group = [e for e in entries if (e.kind == WIN) == (kind == WIN)]
                if not group:
                    continue
                lines.append(f"**{heading}**")
                lines.append("")
                for entry in group:
                    tag = (
                        " _(internal)_"
                        if entry.kind != WIN and entry.visibility == "internal"
                        else ""
                    )
                    lines.append(f"- **{_md(entry.summary)}**{tag}")
                    for label, text in (
                        ("Situation", entry.situation),
                        ("Action", entry.action),
                        ("Result", entry.result),
                    ):
                        lines.append(f"  - {label}: {_md(' '.join(text.split()))}")
                lines.append("")
    return "\n".join(lines).rstrip("\n") + "\n"


def _md(text: str) -> str:
    """User text as Markdown text: no accidental emphasis, headings or HTML."""
    out = text
    for char in ("\\", "*", "_", "`", "[", "]", "<", ">", "#"):
        out = out.replace(char, "\\" + char)
    return out


def archive(
    session: Session, org: OrgConfig, team_id: str | None, quarter: str
) -> list[tuple[WinsDigest, WinsCycle]]:
    cycles = quarter_cycles(session, org, quarter)
    ids = [c.id for c in cycles]
    by_id = {c.id: c for c in cycles}
    query = (
        select(WinsDigest)
        .where(col(WinsDigest.cycle_id).in_(ids))
        .where(WinsDigest.audience != "stakeholders")
    )
    if team_id is not None:
        query = query.where(WinsDigest.team_id == team_id)
    rows = session.exec(query.order_by(col(WinsDigest.cycle_id), col(WinsDigest.team_id))).all()
    return [(d, by_id[d.cycle_id]) for d in rows]
