"""Progress without shame: aggregate status, a projected finish, the daily platform summary.

Public views show counts only; the per-owner list goes to the platform team and the sponsor.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta

from sqlmodel import Session, select

from bot.mrkdwn import escape
from bot.platform_migrations import steps
from bot.platform_migrations.models import (
    BLOCKED,
    Migration,
    MigrationEvent,
    OwnerNudge,
)
from bot.platform_migrations.targets import targets

STATUSES = ("done", "exempt", "in_progress", "blocked", "not_started")
LABELS = {
    "done": "done",
    "exempt": "exempt",
    "in_progress": "in progress",
    "blocked": "blocked",
    "not_started": "not started",
}
UNANSWERED_NUDGES = 3


@dataclass
class Status:
    migration: Migration
    counts: dict[str, int]
    total: int
    by_service: dict[str, str] = field(default_factory=dict)
    projected: date | None = None
    history: list[tuple[datetime, int]] = field(default_factory=list)  # finished over time
    scope: list[tuple[datetime, int]] = field(default_factory=list)  # targets over time

    @property
    def finished(self) -> int:
        return self.counts["done"] + self.counts["exempt"]

    def projection_text(self) -> str:
        deadline = self.migration.deadline
        if self.total and self.finished == self.total:
            return "finished"
        if self.projected is None:
            return f"no finish can be projected yet (nothing finished); deadline {deadline}"
        verdict = (
            "on track"
            if self.projected <= deadline
            else (f"{(self.projected - deadline).days} days after the deadline")
        )
        return f"projected finish {self.projected} ({verdict}; deadline {deadline})"


def status(session: Session, migration: Migration, now: datetime) -> Status:
    live = targets(session, migration.id)
    by_service = {
        t.service: steps.target_status(steps.states(session, migration.id, t.service)) for t in live
    }
    counts = Counter(by_service.values())
    result = Status(migration, {s: counts.get(s, 0) for s in STATUSES}, len(live), by_service)
    events = list(
        session.exec(
            select(MigrationEvent)
            .where(MigrationEvent.migration_id == migration.id)
            .order_by(MigrationEvent.at, MigrationEvent.id)
        ).all()
    )
    finished = scope = 0
    for event in events:
        if event.kind == "target_finished":
            finished += 1
            result.history.append((event.at, finished))
        elif event.kind == "exemption_expired":
            finished = max(0, finished - 1)
            result.history.append((event.at, finished))
        elif event.kind in ("target_added", "target_removed"):
            scope += 1 if event.kind == "target_added" else -1
            result.scope.append((event.at, scope))
    result.projected = project(result, now)
    return result


def project(found: Status, now: datetime) -> date | None:
    """Linear from the pace since the first target finished (or since the migration began)."""
    remaining = found.total - found.finished
    if remaining <= 0:
        return now.date()
    if not found.history or found.finished == 0:
        return None
    start = found.scope[0][0] if found.scope else found.history[0][0]
    elapsed = max(now - start, timedelta(days=1))
    per_day = found.finished / (elapsed.total_seconds() / 86400)
    return (now + timedelta(days=remaining / per_day)).date()


def status_text(found: Status, *, detailed: bool) -> str:
    m = found.migration
    counts = " · ".join(f"{LABELS[s]} {found.counts[s]}" for s in STATUSES)
    lines = [
        f"{m.title} [{m.id}] — stage {m.stage.replace('_', ' ')}",
        f"{found.total} services: {counts}",
        found.projection_text(),
        f"deadline {m.deadline}: {m.deadline_reason}",
    ]
    if detailed:
        lines.append("per service:")
        lines += [f"  {svc}: {LABELS[state]}" for svc, state in sorted(found.by_service.items())]
    return "\n".join(lines)


@dataclass
class DailySummary:
    migration: Migration
    newly_blocked: list[tuple[str, str, str | None]]  # service, step, reason
    newly_done: list[str]  # services that finished
    silent: list[tuple[str, int]]  # person, unanswered nudges
    long_tail: list[tuple[str, int]]  # service, days outstanding

    @property
    def empty(self) -> bool:
        return not (self.newly_blocked or self.newly_done or self.silent or self.long_tail)


def daily_summary(session: Session, migration: Migration, now: datetime) -> DailySummary:
    since = now - timedelta(days=1)
    events = session.exec(
        select(MigrationEvent).where(
            MigrationEvent.migration_id == migration.id, MigrationEvent.at > since
        )
    ).all()
    blocked = []
    for e in events:
        if e.kind == BLOCKED and e.service and e.step:
            row = steps.state_of(session, migration.id, e.service, e.step)
            if row.state == BLOCKED:
                blocked.append((e.service, e.step, row.reason))
    done = sorted({e.service for e in events if e.kind == "target_finished" and e.service})
    silent = [
        (n.person, n.unanswered)
        for n in session.exec(
            select(OwnerNudge).where(OwnerNudge.migration_id == migration.id)
        ).all()
        if n.unanswered >= UNANSWERED_NUDGES
    ]
    tail = []
    if migration.stage == "long_tail":
        for target in targets(session, migration.id):
            if target.finished_at is None:
                tail.append((target.service, (now - target.added_at).days))
    return DailySummary(
        migration, sorted(set(blocked)), done, sorted(silent), sorted(tail, key=lambda t: -t[1])
    )


def summary_mrkdwn(summaries: list[DailySummary], people: dict[str, str] | None = None) -> str:
    """The platform team's daily summary (for the team only: it names services and owners)."""
    lines = [":bar_chart: *Migrations: the last day*"]
    for s in summaries:
        lines.append(f"\n*{escape(s.migration.title)}* (`{escape(s.migration.id)}`)")
        for service, step, reason in s.newly_blocked:
            why = f": {escape(reason)}" if reason else ""
            lines.append(f"• :no_entry: newly blocked: {escape(service)} at {escape(step)}{why}")
        if s.newly_done:
            lines.append(f"• :white_check_mark: newly done: {', '.join(map(escape, s.newly_done))}")
        for person, count in s.silent:
            lines.append(
                f"• :mute: <@{escape(person)}> has not answered {count} nudges: worth a "
                "conversation about what is in the way, not another reminder"
            )
        if s.long_tail:
            tail = ", ".join(f"{escape(svc)} ({days} days)" for svc, days in s.long_tail)
            lines.append(f"• :hourglass: long tail, outstanding for: {tail}")
    return "\n".join(lines)
