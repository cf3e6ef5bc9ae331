"""Support's forms: the request and critical modals, and the satisfaction prompt."""

from __future__ import annotations

import json
from typing import Any

from bot.blockkit import button, option, section, static_select, text
from bot.config import OrgConfig
from bot.support.blocks import shown, thread_link
from bot.support.models import BUSINESS_IMPACTS, CATEGORIES, SEVERITIES, Ticket

# ---- the satisfaction prompt ----------------------------------------------------------------


def rating_text(ticket: Ticket) -> str:
    return f"Ticket #{ticket.id} is resolved. How did we do, from 1 (poor) to 5 (great)?"


def rating_prompt(ticket: Ticket) -> list[dict[str, Any]]:
    return [
        section(
            f":white_check_mark: Your support ticket {thread_link(ticket)} "
            f"({shown(ticket.summary)}) is resolved.\nHow did we do, from 1 (poor) to 5 (great)?"
        ),
        {
            "type": "actions",
            "block_id": f"support.rate.{ticket.id}",
            "elements": [
                button(str(score), f"support.rate.{score}", f"{ticket.id}:{score}")
                for score in range(1, 6)
            ],
        },
    ]


def rated_blocks(ticket: Ticket) -> list[dict[str, Any]]:
    return [
        section(
            f":pray: Thanks: you rated ticket #{ticket.id} *{ticket.rating}/5*. "
            "It goes into the team's weekly support report."
        )
    ]


def rating_comment_modal(ticket: Ticket) -> dict[str, Any]:
    return {
        "type": "modal",
        "callback_id": "support.rating_comment",
        "private_metadata": json.dumps({"ticket": ticket.id}),
        "title": text("Your feedback", "plain_text"),
        "submit": text("Send", "plain_text"),
        "close": text("Skip", "plain_text"),
        "blocks": [
            section(f"Thanks for rating ticket #{ticket.id} *{ticket.rating}/5*."),
            {
                "type": "input",
                "block_id": "comment",
                "optional": True,
                "label": text("Anything we should know? (optional)", "plain_text"),
                "element": {
                    "type": "plain_text_input",
                    "action_id": "value",
                    "multiline": True,
                    "max_length": 3000,
                },
            },
        ],
    }


# ---- forms ----------------------------------------------------------------------------------


def _input(
    block_id: str,
    label: str,
    element: dict[str, Any],
    optional: bool = False,
    hint: str | None = None,
) -> dict[str, Any]:
    block: dict[str, Any] = {
        "type": "input",
        "block_id": block_id,
        "label": text(label, "plain_text"),
        "element": element,
        "optional": optional,
    }
    if hint:
        block["hint"] = text(hint, "plain_text")
    return block


def _critical_inputs() -> list[dict[str, Any]]:
    return [
        _input(
            "impact",
            "Business impact (critical only)",
            static_select(
                "value",
                "Type of business impact",
                [option(label, key) for key, label in BUSINESS_IMPACTS.items()],
            ),
            optional=True,
            hint="Critical requests need one of these types of impact.",
        ),
        _input(
            "why_now",
            "Why would engaging an engineer now help? (critical only)",
            {"type": "plain_text_input", "action_id": "value", "multiline": True},
            optional=True,
            hint="E.g. 'deploys fail with a platform error; nothing in our code changed'.",
        ),
    ]


def request_modal(
    org: OrgConfig,
    *,
    queue_id: str | None,
    summary: str = "",
    metadata: dict[str, Any] | None = None,
) -> dict[str, Any]:
    queues = org.support.queues
    blocks: list[dict[str, Any]] = []
    if len(queues) > 1:
        blocks.append(
            _input(
                "queue",
                "Queue",
                static_select(
                    "value",
                    "Which team's queue",
                    [option(f"{q.id} ({org.team(q.team).name})", q.id) for q in queues],
                    queue_id,
                ),
            )
        )
    summary_input: dict[str, Any] = {
        "type": "plain_text_input",
        "action_id": "value",
        "max_length": 150,
    }
    if summary:
        summary_input["initial_value"] = summary[:150]
    blocks += [
        _input("summary", "Summary", summary_input),
        _input(
            "details",
            "Details",
            {"type": "plain_text_input", "action_id": "value", "multiline": True},
            optional=True,
        ),
        _input(
            "category",
            "Category",
            static_select(
                "value", "What kind of request", [option(v, k) for k, v in CATEGORIES.items()]
            ),
            optional=True,
        ),
        _input(
            "severity",
            "Severity",
            static_select(
                "value",
                "Severity",
                [option(s.capitalize(), s) for s in SEVERITIES],
                "normal",
            ),
        ),
    ]
    if org.applications:
        blocks.append(
            _input(
                "application",
                "Application",
                static_select(
                    "value",
                    "Which application",
                    [option(f"{a.name} (Tier {a.tier})", a.id) for a in org.applications],
                ),
                optional=True,
            )
        )
    blocks += _critical_inputs()
    return {
        "type": "modal",
        "callback_id": "support.request",
        "private_metadata": json.dumps(metadata or {}),
        "title": text("Support request", "plain_text"),
        "submit": text("Open ticket", "plain_text"),
        "close": text("Cancel", "plain_text"),
        "blocks": blocks,
    }


def critical_modal(ticket: Ticket) -> dict[str, Any]:
    return {
        "type": "modal",
        "callback_id": "support.critical",
        "private_metadata": json.dumps({"ticket": ticket.id}),
        "title": text("Mark as critical", "plain_text"),
        "submit": text("Mark critical", "plain_text"),
        "close": text("Cancel", "plain_text"),
        "blocks": [
            section(
                f"*Ticket #{ticket.id}: {shown(ticket.summary)}*\nCritical requests can page "
                "an engineer, so they need both a type of business impact and why engaging an "
                "engineer now would help."
            ),
            *[{**block, "optional": False} for block in _critical_inputs()],
        ],
    }
