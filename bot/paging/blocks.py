"""Block Kit for a page's Slack message (the same in the team channel and in every DM)."""

from __future__ import annotations

from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from bot import mrkdwn
from bot.blockkit import button
from bot.clock import local_text
from bot.paging.escalation import ACKNOWLEDGED, RESOLVED, TRIGGERED, PolicySnapshot
from bot.paging.models import CLASSIFICATIONS, Page, PageEvent
from bot.runbooks import Runbook

# Slack refuses a section text over 3,000 characters; the timeline keeps its newest lines within it.
TIMELINE_LIMIT = 3000
_STATUS_ICON = {
    TRIGGERED: ":rotating_light:",
    ACKNOWLEDGED: ":eyes:",
    RESOLVED: ":white_check_mark:",
}


def person(ref: str | None) -> str:
    """A mention for a Slack id; anything else (an unresolved e-mail, a source) as plain text."""
    if not ref:
        return "nobody"
    if ref[:1] in ("U", "W") and ref.isalnum():
        return mrkdwn.user(ref)
    return mrkdwn.escape(ref)


local = local_text


def when(instant: datetime, zone: ZoneInfo, *, with_day: bool = True) -> str:
    """An instant shown to a person: a Slack date token, so a secondary in London reads London
    time; the fallback names the team's zone ("Mon 16 Nov 09:30 EST", "09:30 EST")."""
    if with_day:
        return mrkdwn.date(instant, local_text(instant, zone))
    fallback = instant.astimezone(zone).strftime("%H:%M %Z")
    return mrkdwn.date(instant, fallback, "{time}")


def page_text(page: Page) -> str:
    """The notification text (what a phone's lock screen shows); user text escaped."""
    return f"Page #{page.id} ({page.status}): {mrkdwn.escape(page.summary)}"


def status_line(page: Page, zone: ZoneInfo, reached: bool = True) -> str:
    icon = _STATUS_ICON.get(page.status, "")
    if page.status == ACKNOWLEDGED and page.acknowledged_at is not None:
        return (
            f"{icon} *Acknowledged* by {person(page.acknowledged_by)} "
            f"at {when(page.acknowledged_at, zone)}"
        )
    if page.status == RESOLVED and page.resolved_at is not None:
        return f"{icon} *Resolved* by {person(page.resolved_by)} at {when(page.resolved_at, zone)}"
    if page.position >= 0 and not reached:
        return (
            f"{icon} *Nobody could be reached*: see the timeline. Call someone from the team "
            "directly, or page another rotation with `/page`."
        )
    return f"{icon} *Triggered*, waiting for an acknowledgement"


def page_blocks(
    page: Page,
    events: list[PageEvent],
    zone: ZoneInfo,
    runbook: Runbook | None = None,
) -> list[dict[str, Any]]:
    policy = PolicySnapshot.from_json(page.policy)
    title = f"Page #{page.id}: {page.summary}"
    blocks: list[dict[str, Any]] = [
        {
            "type": "header",
            "text": {"type": "plain_text", "text": title[:150], "emoji": True},
        },
        {
            "type": "section",
            "text": {"type": "mrkdwn", "text": status_line(page, zone, _reached(events))},
        },
    ]
    opened = when(page.opened_at, zone) + (" (off-hours)" if page.off_hours else "")
    source = mrkdwn.escape(page.source)
    if page.repeat_count > 1:
        source += f" · ×{page.repeat_count} alerts, last at {when(page.last_alert_at, zone)}"
    fields = [
        f"*Opened*\n{opened}",
        f"*Source*\n{source}",
        f"*Policy*\n{mrkdwn.escape(policy.id)} · {_step_text(page, policy)}",
        f"*On call when it opened*\n{person(page.primary_user)}",
    ]
    if page.requested_by:
        fields.append(f"*Paged by*\n{person(page.requested_by)}")
    if page.classification:
        fields.append(
            f"*Classified*\n{CLASSIFICATIONS.get(page.classification, page.classification)}"
        )
    blocks.append(
        {"type": "section", "fields": [{"type": "mrkdwn", "text": f} for f in fields[:10]]}
    )
    if page.business_impact or page.why_page:
        text = ""
        if page.business_impact:
            text += f"*Business impact*\n{mrkdwn.quote(page.business_impact[:1200])}\n"
        if page.why_page:
            text += f"*Why paging helps*\n{mrkdwn.quote(page.why_page[:1200])}"
        blocks.append({"type": "section", "text": {"type": "mrkdwn", "text": text.strip()}})
    if page.details:
        blocks.append(
            {
                "type": "section",
                "text": {"type": "mrkdwn", "text": mrkdwn.quote(page.details[:1500])},
            }
        )
    links = _links(page, runbook)
    if links:
        blocks.append({"type": "section", "text": {"type": "mrkdwn", "text": links}})
    if page.labels:
        shown = [f"`{mrkdwn.escape(k)}={mrkdwn.escape(v)}`" for k, v in sorted(page.labels.items())]
        blocks.append(
            {"type": "context", "elements": [{"type": "mrkdwn", "text": " ".join(shown)[:1900]}]}
        )
    if events:
        blocks.append(
            {"type": "section", "text": {"type": "mrkdwn", "text": timeline_text(events, zone)}}
        )
    actions = _actions(page, runbook)
    if actions:
        blocks.append({"type": "actions", "block_id": f"page:{page.id}", "elements": actions})
    return blocks


def _reached(events: list[PageEvent]) -> bool:
    return any(e.kind == "notified" for e in events)


def timeline_text(events: list[PageEvent], zone: ZoneInfo, limit: int = TIMELINE_LIMIT) -> str:
    """The timeline, newest lines kept: the oldest ones go first when it would not fit, and a
    line says how many (the newest events are what a responder joining at 03:00 needs)."""
    lines = [_event_line(e, zone) for e in events]
    kept: list[str] = []
    size = len("*Timeline*")
    for index in range(len(lines) - 1, -1, -1):
        left_out = index + 1  # if this line does not fit, it and all older ones are left out
        note = len(f"\n_… {left_out} earlier entries not shown_")
        if size + 1 + len(lines[index]) + (note if index else 0) > limit:
            kept.insert(0, f"_… {left_out} earlier {_entries(left_out)} not shown_")
            break
        kept.insert(0, lines[index])
        size += 1 + len(lines[index])
    return "*Timeline*\n" + "\n".join(kept)


def _entries(count: int) -> str:
    return "entry" if count == 1 else "entries"


def _step_text(page: Page, policy: PolicySnapshot) -> str:
    if page.position < 0:
        return "first step pending"
    steps = len(policy.steps)
    cycle, step = divmod(page.position, steps)
    text = f"step {step + 1} of {steps}"
    if policy.repeat:
        text += f", pass {cycle + 1} of {policy.repeat + 1}"
    return text


def _links(page: Page, runbook: Runbook | None) -> str:
    parts = []
    if page.runbook_url:
        parts.append(":book: " + mrkdwn.link(page.runbook_url, "Runbook"))
    elif runbook is not None:
        title = runbook.title
        parts.append(
            ":book: "
            + (
                mrkdwn.link(runbook.url, title)
                if runbook.url
                else f"Runbook: *{mrkdwn.escape(title)}*"
            )
        )
    if page.link_url:
        parts.append(mrkdwn.link(page.link_url, "Alert source"))
    return " · ".join(parts)


# Events whose actor is the person it happened to (paged, skipped), not someone acting.
_SUBJECT_EVENTS = ("notified", "skipped", "unreachable")


def _event_line(event: PageEvent, zone: ZoneInfo) -> str:
    if event.kind in _SUBJECT_EVENTS:
        who = f" {person(event.actor)}" if event.actor else ""
    else:
        who = f" by {person(event.actor)}" if event.actor else ""
    detail = f": {mrkdwn.escape(event.detail)}" if event.detail else ""
    icon = (
        ":warning: " if event.kind in ("unreachable", "webhook_failed", "webhook_failing") else ""
    )
    kind = event.kind.replace("_", " ")
    return f"• {when(event.at, zone, with_day=False)} {icon}{kind}{who}{detail}"


def _actions(page: Page, runbook: Runbook | None) -> list[dict[str, Any]]:
    elements = []
    if page.status == TRIGGERED:
        elements.append(button("Acknowledge", "page.acknowledge", str(page.id), "primary"))
    if page.status in (TRIGGERED, ACKNOWLEDGED):
        if page.position + 1 < page.steps_total:
            elements.append(button("Escalate", "page.escalate", str(page.id)))
        elements.append(button("Resolve", "page.resolve", str(page.id), "danger"))
    elif page.status == RESOLVED and not page.classification:
        elements.append(button("Classify", "page.classify", str(page.id)))
    if runbook is not None and runbook.body and not page.runbook_url:
        elements.append(button("Read the runbook", "page.runbook", str(page.id)))
    return elements


# ---- pager load (rendered inside /oncall load) ----------------------------------------------

_LEVEL_ICON = {"healthy": ":large_green_circle:", "strained": ":large_yellow_circle:"}


def _percent(rate: float) -> str:
    return f"{round(rate * 100)}%"


def load_blocks(report: Any, mention: Any) -> list[dict[str, Any]]:
    """A rotation's pager load (a bot.paging.load.LoadReport); `mention(person)` names people."""
    icon = _LEVEL_ICON.get(report.level, ":red_circle:")
    weeks = len(report.weeks)
    totals = report.totals
    head = (
        f":pager: *{mrkdwn.escape(report.rotation_id)}*: {report.per_week:.1f} business-impacting "
        f"pages a week over the last {weeks} weeks {icon} *{report.level}*"
    )
    if report.restore_stability:
        head += (
            "\n:rotating_light: *Restore stability*: more than 5 business-impacting pages a week "
            "is not sustainable. Put feature work aside until the platform is stable."
        )
    by_week = " · ".join(
        f"{w.counts.counted} {_LEVEL_ICON.get(w.level, ':red_circle:')}" for w in report.weeks
    )
    fields = [
        f"*Pages*\n{totals.pages}: {totals.business_impacting} business-impacting, "
        f"{totals.false_alarms} false alarms, {totals.deploy_noise} own-deploy noise, "
        f"{totals.unclassified} unclassified",
        f"*Off-hours pages*\n{totals.off_hours} ({_percent(report.off_hours_rate)})",
        f"*Fell through to the secondary*\n{totals.fell_through} "
        f"({_percent(report.fall_through_rate)}; should be rare)",
        f"*Week by week, oldest first*\n{by_week}",
    ]
    people = [
        f"{mention(p.person)}: {p.per_week:.1f} a week on call "
        f"{_LEVEL_ICON.get(p.level, ':red_circle:')} ({p.counts.pages} pages, "
        f"{p.counts.off_hours} off-hours)"
        for p in report.people
        if p.counts.pages or p.weeks_on_call
    ]
    blocks: list[dict[str, Any]] = [
        {"type": "section", "text": {"type": "mrkdwn", "text": head}},
        {"type": "section", "fields": [{"type": "mrkdwn", "text": f} for f in fields]},
    ]
    if people:
        blocks.append(
            {"type": "section", "text": {"type": "mrkdwn", "text": "\n".join(people)[:2900]}}
        )
    blocks.append(
        {
            "type": "context",
            "elements": [
                {
                    "type": "mrkdwn",
                    "text": "Healthy under 2 business-impacting pages a week, strained 2 to 5, "
                    "unsustainable over 5. Unclassified pages count until someone classifies "
                    "them; false alarms and own-deploy noise are shown, not counted.",
                }
            ],
        }
    )
    return blocks
