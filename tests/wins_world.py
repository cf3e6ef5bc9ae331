"""Helpers for Wins and Challenges tests: an org with two levels of managers above three teams,
a real local SMTP server, and the form filled in the way Slack submits it."""

from __future__ import annotations

import socket
from datetime import datetime
from email import message_from_bytes, policy
from email.message import EmailMessage
from typing import Any
from zoneinfo import ZoneInfo

from aiosmtpd.controller import Controller

NY = ZoneInfo("America/New_York")
VP, DIRECTOR = "U0VP000001", "U0DIR00001"
INFRA_MGR, DATA_MGR, DEVEX_MGR = "U0MGR00001", "U0MGR00002", "U0MGR00003"
ALICE, FIONA, PAT = "U0ENG00001", "U0ENG00011", "U0ENG00021"
INFRA_CH, DATA_CH, DEVEX_CH = "C0INFRA0001", "C0DATA00001", "C0DEVEX0001"
DIGESTS, LEADS = "C0WINS00001", "C0LEADS0001"


def org_yaml(first_deadline: str = "2026-11-25 15:00", extra_wins: str = "") -> str:
    return f"""
timezone: America/New_York
business_hours: {{days: [mon, tue, wed, thu, fri], start: "09:00", end: "17:00"}}
holidays: [2026-12-25, 2027-01-01]
teams:
  - {{id: platform-org, name: Platform Engineering, managers: [{VP}]}}
  - {{id: infra-dir, name: Infrastructure, parent: platform-org, managers: [{DIRECTOR}]}}
  - id: infra
    name: Platform Infrastructure
    parent: infra-dir
    channel: {INFRA_CH}
    managers: [{INFRA_MGR}]
    members: [{ALICE}, U0ENG00002]
  - id: data
    name: Data Platform
    parent: infra-dir
    channel: {DATA_CH}
    timezone: Europe/London
    managers: [{DATA_MGR}]
    members: [{FIONA}]
  - id: devex
    name: Developer Experience
    parent: platform-org
    channel: {DEVEX_CH}
    managers: [{DEVEX_MGR}]
    members: [{PAT}]
wins:
  cadence: 2w
  first_deadline: "{first_deadline}"
  reminders: [2d, 3h]
  selection_window: 1d
  digest_channel: {DIGESTS}
  stakeholder_channel: {LEADS}
  stakeholder_emails: [cto@example.com, ceo@example.com]
{extra_wins}
"""


def make(world_factory: Any, start: datetime, **kw: Any) -> Any:
    world = world_factory(org_yaml(**kw), start)
    for uid, name in ((DIRECTOR, "Dana Director"), (DEVEX_MGR, "Max DevEx"), (PAT, "Pat Lee")):
        world.fake.add_user(uid, name, f"{name.split()[0].lower()}@example.com")
    return world


def select(value: str) -> dict[str, Any]:
    return {
        "type": "static_select",
        "selected_option": {"text": {"type": "plain_text", "text": value}, "value": value},
    }


def ticks(*values: str) -> dict[str, Any]:
    return {
        "type": "checkboxes",
        "selected_options": [
            {"text": {"type": "plain_text", "text": v}, "value": v} for v in values
        ],
    }


def entry_values(
    kind: str = "win",
    summary: str = "Builds are twice as fast",
    situation: str = "Builds took 20 minutes.",
    action: str = "We cached dependencies.",
    result: str = "Builds take 9 minutes; 40 engineer-hours saved a week.",
    visibility: str = "shareable",
    names_team: str | None = None,
    raised: bool = False,
    keep: bool = False,
) -> dict[str, dict[str, Any]]:
    values: dict[str, dict[str, Any]] = {
        "kind": {"value": select(kind)},
        "summary": {"value": summary},
        "situation": {"value": situation},
        "action": {"value": action},
        "result": {"value": result},
        "visibility": {"value": select(visibility)},
        "raised": {"value": ticks("raised") if raised else ticks()},
        "keep": {"value": ticks("keep") if keep else ticks()},
    }
    if names_team:
        values["names_team"] = {"value": select(names_team)}
    return values


def write(world: Any, user: str, **kw: Any) -> Any:
    """The person types /wins and saves the form; returns the HTTP response of the submission."""
    world.slack.command("/wins", "", user)
    view = world.opened_view()
    return world.slack.submit_view(view, user, entry_values(**kw))


def texts(messages: list[Any]) -> str:
    out = []
    for m in messages:
        out.append(m.text)
        for block in m.blocks or []:
            text = (block.get("text") or {}).get("text")
            if text:
                out.append(text)
    return "\n".join(out)


class Inbox:
    def __init__(self) -> None:
        self.messages: list[EmailMessage] = []

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        message = message_from_bytes(envelope.content, policy=policy.default)
        message["X-Envelope-To"] = ", ".join(envelope.rcpt_tos)
        self.messages.append(message)  # type: ignore[arg-type]
        return "250 OK"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class SmtpServer:
    """A real SMTP server on loopback (aiosmtpd), started and stopped by the test."""

    def __init__(self) -> None:
        self.inbox = Inbox()
        self.port = free_port()
        self.controller = Controller(self.inbox, hostname="127.0.0.1", port=self.port)

    @property
    def url(self) -> str:
        return f"smtp://127.0.0.1:{self.port}"

    def start(self) -> SmtpServer:
        self.controller.start()
        return self

    def stop(self) -> None:
        self.controller.stop()
