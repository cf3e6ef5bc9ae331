"""Block Kit and texts for Wins and Challenges: reminders, the STAR form, the selection forms,
notices and the App Home section. Every piece of user text is escaped for mrkdwn here."""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import datetime
from typing import TYPE_CHECKING, Any
from zoneinfo import ZoneInfo

from bot.blockkit import actions, button, context, option, section
from bot.clock import local_text
from bot.config import OrgConfig
from bot.mrkdwn import escape
from bot.wins.checks import SUMMARY_LINE
from bot.wins.models import CHALLENGE, INTERNAL, SHAREABLE, WIN, WinsCycle, WinsEntry

if TYPE_CHECKING:
    from bot.wins.digests import Item

HELP = """*Wins and Challenges* (every {cadence}, due {deadline})
• `/wins` – write a win or a challenge for your team (situation, action, result)
• `/wins news` – start from this cycle's operations news (pages, support tickets, SLA)
• `/wins none` – no update from your team this cycle (that counts as submitted)
• `/wins delegate @someone` – away this cycle? they write and choose for you
• `/wins select` – choose the highlights to pass up from the teams below you
• `/wins view [team]` – read every entry of a team below you (managers and skip managers)
• `/wins archive [team] [2026Q4]` – past digests
• `/wins help` – this text"""

KIND_LABELS = {WIN: "Win", CHALLENGE: "Challenge"}
VISIBILITY_LABELS = {
    INTERNAL: "Internal: stays in the platform org",
    SHAREABLE: "Shareable: may reach stakeholders",
}


def when(instant: datetime, zone: ZoneInfo) -> str:
    fallback = local_text(instant, zone)
    return f"<!date^{int(instant.timestamp())}^{{date_short_pretty}} {{time}}|{fallback}>"


def form_value(cycle: WinsCycle, team_id: str) -> str:
    return f"{cycle.id}:{team_id}"


# ---- reminders -------------------------------------------------------------------------------


def reminder(
    org: OrgConfig, cycle: WinsCycle, team_id: str, *, late: bool, delegated_by: str | None
) -> tuple[str, list[dict[str, Any]]]:
    team = org.team(team_id)
    due = when(cycle.deadline, org.zone(team_id))
    if late:
        text = (
            f"The Wins and Challenges deadline ({due}) has passed and *{escape(team.name)}* has "
            "no update yet. Add it now: the team digest is updated in place until the level "
            "above chooses its highlights."
        )
    else:
        text = (
            f"Wins and Challenges for *{escape(team.name)}* are due {due}. A few bullets on what "
            "went well and what got in the way, each with a bold summary, the situation, what "
            "you did, and the result (numbers are your friends)."
        )
    if delegated_by:
        text += f"\n_You are standing in for <@{escape(delegated_by)}> this cycle._"
    value = form_value(cycle, team_id)
    kit = [
        section(text),
        actions(
            button("Write an entry", "wins.open", value, "primary"),
            button("Start from operations news", "wins.open_news", value),
            button("No update this cycle", "wins.no_update", value),
            block_id="wins_reminder",
        ),
    ]
    return text, kit


# ---- the form --------------------------------------------------------------------------------


def _text_input(
    block_id: str,
    label: str,
    *,
    initial: str = "",
    multiline: bool = False,
    optional: bool = False,
    hint: str | None = None,
    max_length: int = 3000,
) -> dict[str, Any]:
    element: dict[str, Any] = {
        "type": "plain_text_input",
        "action_id": "value",
        "multiline": multiline,
        "max_length": max_length,
    }
    if initial:
        element["initial_value"] = initial[:max_length]
    block: dict[str, Any] = {
        "type": "input",
        "block_id": block_id,
        "label": {"type": "plain_text", "text": label},
        "element": element,
        "optional": optional,
    }
    if hint:
        block["hint"] = {"type": "plain_text", "text": hint}
    return block


def _select(
    block_id: str,
    label: str,
    options: list[dict[str, Any]],
    initial: str | None,
    optional: bool = False,
) -> dict[str, Any]:
    element: dict[str, Any] = {"type": "static_select", "action_id": "value", "options": options}
    chosen = next((o for o in options if o["value"] == initial), None)
    if chosen is not None:
        element["initial_option"] = chosen
    return {
        "type": "input",
        "block_id": block_id,
        "label": {"type": "plain_text", "text": label},
        "element": element,
        "optional": optional,
    }


def entry_modal(
    org: OrgConfig,
    team_ids: Sequence[str],
    metadata: dict[str, Any],
    *,
    entry: WinsEntry | None = None,
    prefill: dict[str, str] | None = None,
    news: str | None = None,
    proposing: bool = False,
) -> dict[str, Any]:
    values: dict[str, Any] = dict(prefill or {})
    if entry is not None:
        values = {
            "kind": entry.kind,
            "summary": entry.summary,
            "situation": entry.situation,
            "action": entry.action,
            "result": entry.result,
            "visibility": entry.visibility,
            "names_team": entry.names_team,
            "raised": entry.raised_with_leadership,
            "team": entry.team_id,
        }
    blocks: list[dict[str, Any]] = []
    intro = (
        "Your entry goes to your line manager, who decides what goes into the team's update."
        if proposing
        else "Start with a short summary people can scan, then a sentence or two each."
    )
    blocks.append(context(intro))
    if news:
        blocks.append(context(f":bar_chart: Operations news this cycle: {escape(news)}"))
    if len(team_ids) > 1 and entry is None:
        blocks.append(
            _select(
                "team",
                "Team",
                [option(org.team(t).name, t) for t in team_ids],
                values.get("team") or team_ids[0],
            )
        )
    blocks.append(
        _select(
            "kind",
            "Win or challenge",
            [option(v, k) for k, v in KIND_LABELS.items()],
            values.get("kind") or WIN,
        )
    )
    blocks.append(
        _text_input(
            "summary",
            "Summary (shown bold)",
            initial=values.get("summary", ""),
            max_length=300,
            hint=f"One line, up to about {SUMMARY_LINE} characters.",
        )
    )
    blocks.append(
        _text_input(
            "situation",
            "Situation",
            initial=values.get("situation", ""),
            multiline=True,
            hint="What was it like before? Context for why you acted.",
        )
    )
    blocks.append(
        _text_input(
            "action",
            "Action",
            initial=values.get("action", ""),
            multiline=True,
            hint="What did the team do?",
        )
    )
    blocks.append(
        _text_input(
            "result",
            "Result",
            initial=values.get("result", ""),
            multiline=True,
            hint="What changed? A number shows it best.",
        )
    )
    blocks.append(
        _select(
            "visibility",
            "For a challenge: who may read it",
            [option(v, k) for k, v in VISIBILITY_LABELS.items()],
            values.get("visibility") or INTERNAL,
        )
    )
    others = [t for t in org.teams if t.id not in team_ids]
    if others:
        blocks.append(
            _select(
                "names_team",
                "Does the challenge name another team?",
                [option(t.name, t.id) for t in others][:100],
                values.get("names_team"),
                optional=True,
            )
        )
    raised_option = option("Raised with that team's leadership", "raised")
    raised_element: dict[str, Any] = {
        "type": "checkboxes",
        "action_id": "value",
        "options": [raised_option],
    }
    if values.get("raised"):
        raised_element["initial_options"] = [raised_option]
    blocks.append(
        {
            "type": "input",
            "block_id": "raised",
            "label": {"type": "plain_text", "text": "Raised with them"},
            "element": raised_element,
            "optional": True,
        }
    )
    keep_option = option("Keep it as written", "keep", "even if the checks flag something")
    blocks.append(
        {
            "type": "input",
            "block_id": "keep",
            "label": {"type": "plain_text", "text": "Gentle checks"},
            "element": {"type": "checkboxes", "action_id": "value", "options": [keep_option]},
            "optional": True,
            "hint": {
                "type": "plain_text",
                "text": "We flag a result without a number, unexpanded acronyms and long summaries once.",
            },
        }
    )
    title = (
        "Edit entry"
        if entry is not None
        else ("Propose an entry" if proposing else "Wins and Challenges")
    )
    return {
        "type": "modal",
        "callback_id": "wins.entry",
        "title": {"type": "plain_text", "text": title[:24]},
        "submit": {"type": "plain_text", "text": "Save"},
        "close": {"type": "plain_text", "text": "Cancel"},
        "private_metadata": json.dumps(metadata),
        "blocks": blocks,
    }


def entry_text(entry: WinsEntry, org: OrgConfig) -> str:
    kind = KIND_LABELS.get(entry.kind, entry.kind)
    tag = ""
    if entry.kind == CHALLENGE:
        tag = " · internal" if entry.visibility == INTERNAL else " · shareable"
        if entry.names_team:
            names = (
                org.team(entry.names_team).name
                if entry.names_team in {t.id for t in org.teams}
                else entry.names_team
            )
            tag += f" · names {escape(names)}" + (
                " (raised)" if entry.raised_with_leadership else ""
            )
    story = " ".join(p.strip() for p in (entry.situation, entry.action, entry.result) if p.strip())
    return f"{kind}{tag}: *{escape(entry.summary)}*\n{escape(story)}"


def entry_card(entry: WinsEntry, org: OrgConfig, headline: str) -> list[dict[str, Any]]:
    value = str(entry.id)
    return [
        section(headline),
        section(entry_text(entry, org)),
        actions(
            button("Edit", "wins.edit", value),
            button("Delete", "wins.delete", value, "danger"),
            block_id=f"wins_entry_{entry.id}",
        ),
    ]


def proposal_card(entry: WinsEntry, org: OrgConfig) -> tuple[str, list[dict[str, Any]]]:
    team = org.team(entry.team_id)
    text = f"<@{escape(entry.author)}> proposes an entry for *{escape(team.name)}*:"
    value = str(entry.id)
    return text, [
        section(text),
        section(entry_text(entry, org)),
        actions(
            button("Include", "wins.accept", value, "primary"),
            button("Leave out", "wins.decline", value),
            block_id=f"wins_proposal_{entry.id}",
        ),
    ]


# ---- selection -------------------------------------------------------------------------------


def _item_line(item: Item) -> str:
    return f"{KIND_LABELS.get(item.kind, item.kind)} · {item.from_team_name}"


def _wins(n: int) -> str:
    return "win" if n == 1 else "wins"


def _challenges(n: int) -> str:
    return "challenge" if n == 1 else "challenges"


def selection_request(
    org: OrgConfig,
    cycle: WinsCycle,
    team_id: str,
    items: Sequence[Item],
    due: datetime,
    deadline: str,
) -> tuple[str, list[dict[str, Any]]]:
    team = org.team(team_id)
    wins = sum(1 for i in items if i.kind == WIN)
    text = (
        f"The teams below *{escape(team.name)}* have written {wins} {_wins(wins)} and "
        f"{len(items) - wins} {_challenges(len(items) - wins)} for {escape(deadline)}. Choose the "
        "most important, interesting or impactful to pass up, rewriting them for a broader "
        f"audience as needed, by {when(due, org.zone(team_id))}."
    )
    return text, [
        section(text),
        actions(
            button("Choose highlights", "wins.select", form_value(cycle, team_id), "primary"),
            block_id="wins_select",
        ),
    ]


def select_modal(
    org: OrgConfig, cycle: WinsCycle, team_id: str, items: Sequence[Item], metadata: dict[str, Any]
) -> dict[str, Any]:
    team = org.team(team_id)
    blocks: list[dict[str, Any]] = [
        context(
            f"Pick what *{escape(team.name)}* passes up. Next you can rewrite each pick for a "
            "broader audience. Internal challenges never reach stakeholders, whatever you pick."
        )
    ]
    if not items:
        blocks.append(section("Nothing was written below you this cycle."))
    by_team: dict[str, list[Item]] = {}
    for item in items:
        by_team.setdefault(item.from_team, []).append(item)
    for from_team, group in by_team.items():
        for start in range(0, len(group), 10):  # a checkbox group holds ten options
            chunk = group[start : start + 10]
            options = [
                option(
                    i.summary,
                    str(i.entry_id),
                    KIND_LABELS.get(i.kind, i.kind)
                    + (" · internal" if i.internal else "")
                    + (" · not curated" if i.uncurated else ""),
                )
                for i in chunk
            ]
            blocks.append(
                {
                    "type": "input",
                    "block_id": f"pick_{from_team}_{start // 10}",
                    "label": {"type": "plain_text", "text": org.team(from_team).name[:2000]},
                    "element": {"type": "checkboxes", "action_id": "value", "options": options},
                    "optional": True,
                }
            )
    return {
        "type": "modal",
        "callback_id": "wins.select",
        "title": {"type": "plain_text", "text": "Choose highlights"},
        "submit": {"type": "plain_text", "text": "Next"},
        "close": {"type": "plain_text", "text": "Cancel"},
        "private_metadata": json.dumps(metadata),
        "blocks": blocks[:100],
    }


def rewrite_modal(items: Sequence[Item], metadata: dict[str, Any]) -> dict[str, Any]:
    blocks: list[dict[str, Any]] = [
        context(
            "Rewrite each highlight for the audience above: expand acronyms, drop details they do not need."
        )
    ]
    if not items:
        blocks.append(
            section("You picked nothing: the level above will see that nothing was passed up.")
        )
    for item in items:
        n = item.entry_id
        blocks.append(section(f"*{escape(_item_line(item))}*"))
        blocks.append(_text_input(f"summary_{n}", "Summary", initial=item.summary, max_length=300))
        blocks.append(
            _text_input(f"situation_{n}", "Situation", initial=item.situation, multiline=True)
        )
        blocks.append(_text_input(f"action_{n}", "Action", initial=item.action, multiline=True))
        blocks.append(_text_input(f"result_{n}", "Result", initial=item.result, multiline=True))
    return {
        "type": "modal",
        "callback_id": "wins.rewrite",
        "title": {"type": "plain_text", "text": "Rewrite highlights"},
        "submit": {"type": "plain_text", "text": "Pass them up"},
        "close": {"type": "plain_text", "text": "Cancel"},
        "private_metadata": json.dumps(metadata),
        "blocks": blocks[:100],
    }


def missed_text(team_name: str, above: str | None, deadline: str) -> str:
    if above:
        return (
            f"The selection window for *{escape(team_name)}* ({escape(deadline)}) "
            f"closed without a choice, so *{escape(above)}* sees everything from your teams, "
            "marked as not curated."
        )
    return (
        f"The selection window for *{escape(team_name)}* ({escape(deadline)}) "
        "closed without a choice. Everything from below is in the digest channel, marked as not "
        "curated; nothing went to stakeholders yet. Choose now to send it."
    )


def missed_blocks(text: str, cycle: WinsCycle, team_id: str, *, top: bool) -> list[dict[str, Any]]:
    kit = [section(text)]
    if top:
        kit.append(
            actions(
                button("Choose highlights", "wins.select", form_value(cycle, team_id), "primary"),
                block_id="wins_select",
            )
        )
    return kit


# ---- App Home --------------------------------------------------------------------------------


def home_section(
    pending: Sequence[tuple[str, str, WinsCycle, bool, ZoneInfo]],
    selections: Sequence[tuple[str, str, WinsCycle, datetime, ZoneInfo]],
    latest: Sequence[tuple[str, str]],
) -> list[dict[str, Any]]:
    """pending: (team id, name, cycle, submitted?, zone); selections: (team id, name, cycle,
    due, zone); latest: (team name, digest text)."""
    if not pending and not selections and not latest:
        return []
    out: list[dict[str, Any]] = [section("*Wins and Challenges*")]
    for team_id, team_name, cycle, submitted, zone in pending:
        state = ":white_check_mark: submitted" if submitted else ":hourglass: not submitted yet"
        out.append(
            {
                **section(f"*{escape(team_name)}*: due {when(cycle.deadline, zone)} · {state}"),
                "accessory": button("Write an entry", "wins.open", form_value(cycle, team_id)),
            }
        )
    for team_id, team_name, cycle, due, zone in selections:
        out.append(
            {
                **section(f"Highlights to choose for *{escape(team_name)}* by {when(due, zone)}"),
                "accessory": button("Choose highlights", "wins.select", form_value(cycle, team_id)),
            }
        )
    for team_name, text in latest:
        out.append(context(f"Latest digest of {escape(team_name)}:"))
        out.append(section(text))
    return out
