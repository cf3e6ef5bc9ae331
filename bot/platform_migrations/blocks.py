"""Block Kit for platform migrations: announcements, owner notices, nudges, forms, App Home.

Every piece of user text (titles, reasons, step instructions, service names) is escaped.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import date
from typing import Any

from bot.blockkit import button, context, section
from bot.mrkdwn import escape
from bot.platform_migrations.loading import StepSpec
from bot.platform_migrations.models import BLOCKED, IN_PROGRESS, Migration

MAX_ITEMS = 20  # work items in one DM (two blocks each); the rest are summarised


@dataclass
class WorkItem:
    """One released, unfinished step of one service, as its owner sees it."""

    migration: Migration
    service: str
    step: StepSpec
    state: str
    waiting: bool = False


def item_value(migration_id: str, service: str, step: str) -> str:
    return json.dumps({"m": migration_id, "s": service, "t": step}, separators=(",", ":"))


def parse_item_value(value: str) -> tuple[str, str, str]:
    try:
        data = json.loads(value)
        return str(data["m"]), str(data["s"]), str(data["t"])
    except (ValueError, KeyError, TypeError):
        from bot.errors import InvalidInput

        raise InvalidInput("That button is from a message opsbot no longer understands.") from None


def _link(url: str | None, label: str) -> str:
    if not url:
        return ""
    if url.startswith(("http://", "https://")):
        return f"<{escape(url)}|{escape(label)}>"
    return escape(url)


def deadline_text(migration: Migration) -> str:
    return (
        f"*Deadline {migration.deadline.isoformat()}* because "
        f"{escape(migration.deadline_reason.rstrip('.'))}."
    )


def docs_text(migration: Migration) -> str:
    parts = [
        p
        for p in (
            _link(migration.on_ramp, "How to move (on-ramp)"),
            _link(migration.off_ramp, "Leaving the old system (off-ramp)"),
        )
        if p
    ]
    ask = f"Questions: <#{migration.channel}>" if migration.channel else ""
    return " · ".join([*parts, ask] if ask else parts)


def announcement(
    migration: Migration, teams: dict[str, list[str]], info_only: bool, horizon: date
) -> tuple[str, list[dict[str, Any]]]:
    """The public notice: what, why, the deadline with its reason, exactly who is affected."""
    count = sum(len(v) for v in teams.values())
    affected = "\n".join(
        f"• *{escape(team)}*: {', '.join(escape(s) for s in services)}"
        for team, services in sorted(teams.items())
    )
    stage = "Pilot" if migration.stage == "pilot" else "Migration"
    blocks = [
        {
            "type": "header",
            "text": {"type": "plain_text", "text": f"{stage}: {migration.title}"[:150]},
        },
        section(f"*Why it matters*\n{escape(migration.why)}"),
        section(deadline_text(migration)),
        section(f"*Affected: {count} service{'s' if count != 1 else ''}*\n{affected or '—'}"),
    ]
    if info_only:
        blocks.append(
            section(
                ":information_source: For information only: the deadline is more than 12 months "
                f"away. Nothing is asked of you before {horizon.isoformat()}; early movers are "
                "welcome and the platform team will make the move easier in the meantime."
            )
        )
    docs = docs_text(migration)
    if docs:
        blocks.append(context(docs))
    if migration.mandated and migration.sponsor:
        blocks.append(context(f"Sponsored by <@{escape(migration.sponsor)}>"))
    text = f"{stage}: {escape(migration.title)} (deadline {migration.deadline.isoformat()})"
    return text, blocks


def item_blocks(item: WorkItem, index: int) -> list[dict[str, Any]]:
    m, step = item.migration, item.step
    how = f"\n{_link(step.how, 'Instructions')}" if step.how else ""
    state = {IN_PROGRESS: " _(in progress)_", BLOCKED: " _(blocked)_"}.get(item.state, "")
    auto = ""
    if step.done_when is not None:
        auto = "\n_opsbot will see this one itself when it is done; no need to report it._"
    value = item_value(m.id, item.service, step.id)
    buttons = [
        button("Done", "migration.done", value, "primary"),
        button("In progress", "migration.progress", value),
        button("Blocked", "migration.blocked", value),
        button("Need help", "migration.help", value),
        button("Request an exemption", "migration.exempt", value),
    ]
    if step.done_when is not None:
        buttons = buttons[1:]
    return [
        section(
            f"*{escape(item.service)}* · {escape(step.title)}{state}{how}{auto}",
            block_id=f"mig{index}",
        ),
        {"type": "actions", "block_id": f"mig{index}:actions", "elements": buttons},
    ]


def owner_notice(
    migration: Migration,
    services: list[str],
    items: list[WorkItem],
    info_only: bool,
    horizon: date,
) -> tuple[str, list[dict[str, Any]]]:
    """The DM an owner gets when a migration starts: their services, what is released now."""
    names = ", ".join(f"*{escape(s)}*" for s in services)
    blocks: list[dict[str, Any]] = [
        section(
            f":package: *{escape(migration.title)}* affects your service"
            f"{'s' if len(services) != 1 else ''} {names}.\n{escape(migration.why)}"
        ),
        section(deadline_text(migration)),
    ]
    if info_only:
        blocks.append(
            context(
                f"For information only until {horizon.isoformat()}: you will not be reminded "
                "before then."
            )
        )
    if items:
        blocks.append(section("*Released to you now:*"))
        for index, item in enumerate(items[:MAX_ITEMS]):
            blocks += item_blocks(item, index)
    else:
        blocks.append(section("Nothing is released to you yet; you will hear when it is."))
    docs = docs_text(migration)
    if docs:
        blocks.append(context(docs))
    text = f"{migration.title} affects {', '.join(services)}"
    return text, blocks


def released_notice(item: WorkItem) -> tuple[str, list[dict[str, Any]]]:
    m = item.migration
    blocks = [
        section(
            f":arrow_forward: *{escape(m.title)}*: the next step for *{escape(item.service)}* "
            "is released: what it waits on is done."
        ),
        *item_blocks(item, 0),
        context(deadline_text(m) + (" · " + docs_text(m) if docs_text(m) else "")),
    ]
    return f"{m.title}: {item.step.title} is released for {item.service}", blocks


def nudge(items: list[WorkItem], deadlines: dict[str, str]) -> tuple[str, list[dict[str, Any]]]:
    """One DM per owner covering all their migrations' released, unfinished work."""
    migrations = {i.migration.id: i.migration for i in items}
    blocks: list[dict[str, Any]] = [
        section(
            f":wave: Where things stand on {len(migrations)} migration"
            f"{'s' if len(migrations) != 1 else ''} that affect{'' if len(migrations) != 1 else 's'} "
            "your services. Press a button to tell opsbot; blocked work goes to the platform team."
        )
    ]
    index = 0
    for migration_id, migration in migrations.items():
        blocks.append({"type": "divider"})
        blocks.append(section(f"*{escape(migration.title)}*\n{deadlines[migration_id]}"))
        for item in [i for i in items if i.migration.id == migration_id]:
            if index >= MAX_ITEMS:
                break
            blocks += item_blocks(item, index)
            index += 1
        blocks.append(
            {
                "type": "actions",
                "block_id": f"snooze:{migration_id}"[:255],
                "elements": [
                    button("Snooze a week", "migration.snooze", migration_id),
                ],
            }
        )
    if len(items) > index:
        blocks.append(context(f"…and {len(items) - index} more in opsbot's App Home."))
    return "Migrations that affect your services", blocks[:50]


def exemption_request(
    migration: Migration, service: str, step: StepSpec, owner: str, reason: str, until: date
) -> tuple[str, list[dict[str, Any]]]:
    value = json.dumps(
        {"m": migration.id, "s": service, "t": step.id, "u": until.isoformat(), "o": owner},
        separators=(",", ":"),
    )
    blocks = [
        section(
            f":raised_hand: <@{escape(owner)}> asks for an exemption from *{escape(step.title)}* "
            f"for *{escape(service)}* ({escape(migration.title)}) until {until.isoformat()}.\n"
            f">{escape(reason)}"
        ),
        {
            "type": "actions",
            "block_id": "exemption",
            "elements": [
                button("Approve", "migration.exempt_approve", value, "primary"),
                button("Decline", "migration.exempt_decline", value, "danger"),
            ],
        },
    ]
    return f"Exemption request for {service} ({migration.title})", blocks


def _input(
    block_id: str, label: str, element: dict[str, Any], optional: bool = False
) -> dict[str, Any]:
    block = {
        "type": "input",
        "block_id": block_id,
        "label": {"type": "plain_text", "text": label},
        "element": element,
    }
    if optional:
        block["optional"] = True
    return block


def _text_input(
    action_id: str, multiline: bool = False, initial: str | None = None
) -> dict[str, Any]:
    element: dict[str, Any] = {
        "type": "plain_text_input",
        "action_id": action_id,
        "multiline": multiline,
    }
    if initial:
        element["initial_value"] = initial
    return element


def reason_modal(
    callback_id: str, title: str, label: str, value: str, extra: list[dict[str, Any]] | None = None
) -> dict[str, Any]:
    return {
        "type": "modal",
        "callback_id": callback_id,
        "private_metadata": value,
        "title": {"type": "plain_text", "text": title[:24]},
        "submit": {"type": "plain_text", "text": "Send"},
        "close": {"type": "plain_text", "text": "Cancel"},
        "blocks": [_input("reason", label, _text_input("value", multiline=True)), *(extra or [])],
    }


def date_input(block_id: str, label: str, initial: date) -> dict[str, Any]:
    return _input(
        block_id,
        label,
        {"type": "datepicker", "action_id": "value", "initial_date": initial.isoformat()},
    )


STEPS_EXAMPLE = (
    "targets:\n  tags: [postgres]\nsteps:\n  - id: driver\n    title: Upgrade the driver\n"
    "    how: https://wiki.example.com/driver\n  - id: switch\n    title: Switch over\n"
    "    after: [driver]"
)


def new_migration_modal() -> dict[str, Any]:
    """The same fields as a migration file; targets and steps in the file's own YAML."""
    return {
        "type": "modal",
        "callback_id": "migration.new",
        "title": {"type": "plain_text", "text": "New migration"},
        "submit": {"type": "plain_text", "text": "Save as draft"},
        "close": {"type": "plain_text", "text": "Cancel"},
        "blocks": [
            _input("id", "Id (lowercase, e.g. pg16-upgrade)", _text_input("value")),
            _input("title", "Title", _text_input("value")),
            _input("why", "Why it matters to the owners", _text_input("value", multiline=True)),
            _input("deadline", "Deadline", {"type": "datepicker", "action_id": "value"}),
            _input(
                "deadline_reason",
                "Why the deadline is that date",
                _text_input("value", multiline=True),
            ),
            _input(
                "sponsor",
                "Sponsor (required when mandated)",
                {"type": "users_select", "action_id": "value"},
                optional=True,
            ),
            _input(
                "mandated",
                "Mandate",
                {
                    "type": "checkboxes",
                    "action_id": "value",
                    "options": [
                        {
                            "text": {"type": "plain_text", "text": "Mandated by leadership"},
                            "value": "mandated",
                        }
                    ],
                },
                optional=True,
            ),
            _input(
                "channel",
                "Where owners ask questions",
                {"type": "conversations_select", "action_id": "value"},
                optional=True,
            ),
            _input("on_ramp", "On-ramp doc (URL)", _text_input("value"), optional=True),
            _input("off_ramp", "Off-ramp doc (URL)", _text_input("value"), optional=True),
            _input(
                "pilot_teams",
                "Pilot teams (config ids, comma separated)",
                _text_input("value"),
                optional=True,
            ),
            _input(
                "plan",
                "Targets and steps (YAML, as in a migration file)",
                _text_input("value", multiline=True, initial=STEPS_EXAMPLE),
            ),
        ],
    }


def confirm_activation(migration: Migration, warnings: list[str]) -> list[dict[str, Any]]:
    lines = "\n".join(f"• {escape(w)}" for w in warnings)
    return [
        section(f":warning: Before *{escape(migration.title)}* goes active:\n{lines}"),
        {
            "type": "actions",
            "block_id": "activate",
            "elements": [
                button("Activate anyway", "migration.activate_confirm", migration.id, "danger"),
            ],
        },
    ]


def home_section(
    items: list[WorkItem], others: list[tuple[Migration, list[str]]]
) -> list[dict[str, Any]]:
    """App Home: migrations the person's services are in, and what is released to them now."""
    if not items and not others:
        return []
    blocks: list[dict[str, Any]] = [section("*Migrations your services are part of*")]
    for index, item in enumerate(items[:10]):
        m = item.migration
        blocks.append(
            section(
                f"*{escape(m.title)}* (deadline {m.deadline.isoformat()}): "
                f"*{escape(item.service)}* · {escape(item.step.title)}",
            )
        )
        blocks.append(item_blocks(item, 100 + index)[1])
    for migration, services in others[:10]:
        blocks.append(
            context(
                f"{escape(migration.title)} (deadline {migration.deadline.isoformat()}): "
                f"{', '.join(escape(s) for s in services)}: nothing released to you right now"
            )
        )
    return blocks
