"""`opsbot demo`: a short story played through the real handlers, printing what each person sees.

Runs offline: SQLite in a temporary directory, an in-process fake Slack, the sample org in
org.yaml, and a clock the story moves by hand. Each capability adds a chapter (see CHAPTERS).
"""

from __future__ import annotations

import html
import re
import sys
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from importlib import resources
from pathlib import Path
from typing import Any, TextIO
from zoneinfo import ZoneInfo

from bot.demo.chapter_migrations import chapter_migrations
from bot.demo.chapter_oncall import chapter_oncall
from bot.demo.chapter_paging import chapter_paging
from bot.demo.chapter_support import chapter_support
from bot.demo.chapter_wins import chapter_wins
from bot.demo.fake_slack import Call
from bot.demo.world import World

# The people of the sample org: Slack id -> (name, e-mail, zone).
PEOPLE: dict[str, tuple[str, str, str]] = {
    "U0VP000001": ("Vera Park (VP Platform)", "vera@example.com", "America/New_York"),
    "U0DIR00001": ("Diego Alvarez (director)", "diego@example.com", "America/New_York"),
    "U0MGR00001": ("Maya Singh (infra manager)", "maya@example.com", "America/New_York"),
    "U0MGR00002": ("Tom Reid (data manager)", "tom@example.com", "Europe/London"),
    "U0ENG00001": ("Alice Chen", "alice@example.com", "America/New_York"),
    "U0ENG00002": ("Bob Okafor", "bob@example.com", "America/New_York"),
    "U0ENG00003": ("Carla Ruiz", "carla@example.com", "America/Chicago"),
    "U0ENG00004": ("Dev Patel", "dev@example.com", "America/New_York"),
    "U0ENG00005": ("Erin Walsh", "erin@example.com", "America/New_York"),
    "U0ENG00011": ("Fiona Hale", "fiona@example.com", "Europe/London"),
    "U0ENG00012": ("Gus Moreau", "gus@example.com", "Europe/London"),
    "U0ENG00013": ("Hana Kim", "hana@example.com", "Europe/London"),
    "U0ENG00014": ("Ivan Petrov", "ivan@example.com", "Europe/London"),
    "U0EXP00001": ("Jade Liu (expert)", "jade@example.com", "America/New_York"),
    "U0EXP00002": ("Kofi Mensah (expert)", "kofi@example.com", "America/New_York"),
    "U0APP00001": ("Liam Brooks (checkout team)", "liam@example.com", "America/New_York"),
    "U0APP00002": ("Mia Novak (reports team)", "mia@example.com", "America/New_York"),
}
CHANNELS = {
    "C0INFRA0001": "#platform-infra",
    "C0DATA00001": "#data-platform",
    "C0HELP00001": "#infra-help",
    "C0TRIAGE001": "#infra-triage",
    "C0EXPERTS01": "#platform-experts",
    "C0WINS00001": "#wins-and-challenges",
    "C0LEADS0001": "#platform-leads",
    "C0ANNOUNCE1": "#platform-announce",
    "C0GENERAL01": "#general",
    "C0MIGPG1601": "#pg16-migration",
}
START = datetime(2026, 11, 16, 9, 30, tzinfo=ZoneInfo("America/New_York"))


def sample_org_text() -> str:
    return resources.files("bot.demo").joinpath("org.yaml").read_text(encoding="utf-8")


def fake_users() -> dict[str, dict[str, Any]]:
    return {
        uid: {"id": uid, "name": name, "real_name": name, "email": email, "tz": tz}
        for uid, (name, email, tz) in PEOPLE.items()
    }


class Narrator:
    """Prints the story: scene headings, and every Slack call since the last print, readably."""

    def __init__(self, world: World, out: TextIO, color: bool) -> None:
        self.world = world
        self.out = out
        self.color = color
        self._seen_calls = 0
        self._seen_responses = 0

    def _c(self, code: str, text: str) -> str:
        return f"\033[{code}m{text}\033[0m" if self.color else text

    def chapter(self, title: str) -> None:
        self.out.write("\n" + self._c("1;36", f"══ {title} ══") + "\n")

    def scene(self, text: str) -> None:
        local = self.world.clock.now().astimezone(START.tzinfo)
        stamp = local.strftime("%a %d %b %H:%M %Z")
        self.out.write("\n" + self._c("1", f"[{stamp}] {text}") + "\n")

    def say(self, text: str) -> None:
        self.out.write(self._c("2", f"  {text}") + "\n")

    def name(self, user_id: str) -> str:
        return PEOPLE.get(user_id, (user_id,))[0]

    def where(self, channel: str) -> str:
        if channel[:1] in ("D", "U"):
            return f"DM to {self.name('U' + channel[1:])}"
        return CHANNELS.get(channel, channel)

    def show(self) -> None:
        """Print what Slack shows people for every call the bot made since the last show."""
        fake = self.world.fake
        calls, responses = fake.calls[self._seen_calls :], fake.responses[self._seen_responses :]
        self._seen_calls += len(calls)
        self._seen_responses += len(responses)
        for call in calls:
            line = self.render_call(call)
            if line:
                self.out.write(line + "\n")
        for response in responses:
            self._reply(response.args)
        self.world.http.get("/healthz")  # keeps the demo honest: the app still answers

    def answered(self, response: Any) -> None:
        """Print what the person sees from an answer given in the ack itself (`/oncall now`),
        which reaches Slack as the HTTP response rather than as a call the bot makes."""
        if response.content:
            self._reply(response.json())

    def _reply(self, args: dict[str, Any]) -> None:
        """A reply to the person who asked: only they see it, unless it is posted in channel."""
        text = self.render_message(args)
        if text:
            who = "only you see" if args.get("response_type") != "in_channel" else "in channel"
            self.out.write(self._block(f"  👁  ({who})", text) + "\n")

    def _block(self, head: str, body: str) -> str:
        lines = body.strip("\n").splitlines() or [""]
        return self._c("33", head) + "\n" + "\n".join("      " + line for line in lines)

    def render_call(self, call: Call) -> str | None:
        a = call.args
        if not call.response.get("ok"):
            return self._c("31", f"  ✗ {call.method} failed: {call.response.get('error')}")
        if call.method == "chat.postMessage":
            thread = " (in thread)" if a.get("thread_ts") else ""
            return self._block(f"  💬 {self.where(a['channel'])}{thread}", self.render_message(a))
        if call.method == "chat.update":
            return self._block(
                f"  ✏️  message updated in {self.where(a['channel'])}", self.render_message(a)
            )
        if call.method == "chat.postEphemeral":
            return self._block(
                f"  👁  only {self.name(a['user'])} sees, in {self.where(a['channel'])}",
                self.render_message(a),
            )
        if call.method in ("views.open", "views.push"):
            view = a.get("view") or {}
            title = (view.get("title") or {}).get("text", "")
            return self._block(
                f"  🪟 a form opens: {title}", self.render_blocks(view.get("blocks", []))
            )
        if call.method == "views.publish":
            view = a.get("view") or {}
            return self._block(
                f"  🏠 App Home of {self.name(a['user_id'])}",
                self.render_blocks(view.get("blocks", [])),
            )
        if call.method == "usergroups.users.update":
            users = a.get("users", "")
            users = users.split(",") if isinstance(users, str) else users
            return self._c(
                "35",
                f"  👥 user group {a.get('usergroup')} is now: "
                + ", ".join(self.name(u) for u in users if u),
            )
        if call.method == "conversations.setTopic":
            return self._c(
                "35", f"  📌 topic of {self.where(a['channel'])}: {self.plain(a.get('topic', ''))}"
            )
        return None

    def render_message(self, args: dict[str, Any]) -> str:
        blocks = args.get("blocks")
        if blocks:
            return self.render_blocks(blocks)
        return self.plain(args.get("text", ""))

    def render_blocks(self, blocks: list[dict[str, Any]]) -> str:
        lines: list[str] = []
        for block in blocks:
            kind = block.get("type")
            if kind == "header":
                lines.append(self.plain(block["text"]["text"]).upper())
            elif kind == "section":
                if block.get("text"):
                    lines.append(self.plain(block["text"]["text"]))
                for f in block.get("fields", []):
                    lines.append("  " + self.plain(f["text"]))
                acc = block.get("accessory")
                if acc and acc.get("type") == "button":
                    lines.append(f"[{self.plain(acc['text']['text'])}]")
            elif kind == "context":
                lines.append(
                    " · ".join(
                        self.plain(e.get("text", "")) for e in block["elements"] if "text" in e
                    )
                )
            elif kind == "actions":
                labels = []
                for e in block.get("elements", []):
                    text = (e.get("text") or e.get("placeholder") or {}).get("text", e.get("type"))
                    labels.append(f"[{self.plain(text)}]")
                lines.append(" ".join(labels))
            elif kind == "input":
                label = block.get("label", {}).get("text", "")
                lines.append(f"▸ {self.plain(label)}: ________")
            elif kind == "divider":
                lines.append("─" * 40)
            elif kind == "rich_text":
                lines.append(self.plain(str(block.get("elements", ""))))
        return "\n".join(lines)

    def plain(self, text: str) -> str:
        """mrkdwn as a person reads it: mentions by name, links by label, entities decoded."""
        text = re.sub(r"<@([UW][A-Z0-9]+)>", lambda m: "@" + self.name(m[1]), text)
        text = re.sub(r"<#([CGD][A-Z0-9]+)(\|[^>]*)?>", lambda m: self.where(m[1]), text)
        text = re.sub(r"<!subteam\^([A-Z0-9]+)(\|([^>]*))?>", lambda m: m[3] or "@" + m[1], text)
        text = re.sub(r"<!date\^[^|>]*\|([^>]*)>", r"\1", text)  # dates: the fallback
        text = re.sub(r"<([^|>]+)\|([^>]+)>", r"\2 (\1)", text)
        text = re.sub(r"<(https?://[^>]+)>", r"\1", text)
        return html.unescape(text)


@dataclass
class Story:
    world: World
    narrator: Narrator

    def __getattr__(self, name: str) -> Any:  # story.slack, story.fake, story.advance ...
        return getattr(self.world, name)


def chapter_foundation(story: Story) -> None:
    n = story.narrator
    n.chapter("Meet opsbot")
    n.scene("Alice opens opsbot's App Home in Slack.")
    story.slack.home_opened("U0ENG00001")
    n.show()
    n.scene("Slack times out and retries the same event; the inbox recognises it.")
    response = story.slack.event(
        {
            "type": "app_home_opened",
            "user": "U0ENG00001",
            "channel": "D0ENG00001",
            "tab": "home",
            "event_ts": "1.000001",
        },
        event_id="Ev0RETRIED1",
    )
    story.slack.event(
        {
            "type": "app_home_opened",
            "user": "U0ENG00001",
            "channel": "D0ENG00001",
            "tab": "home",
            "event_ts": "1.000001",
        },
        event_id="Ev0RETRIED1",
        retry_num=1,
    )
    published = len(story.fake.calls_to("views.publish"))
    n.say(
        f"HTTP {response.status_code}; App Home published {published} times in all "
        "(once for the first open, once for the event, none for its retry)"
    )
    n.show()


# Chapters in story order; each capability appends its own.
CHAPTERS: list[Callable[[Story], None]] = [
    chapter_foundation,
    chapter_oncall,
    chapter_support,
    chapter_paging,
    chapter_wins,
    chapter_migrations,
]


def run_demo(out: TextIO = sys.stdout, color: bool | None = None) -> int:
    color = out.isatty() if color is None else color
    with tempfile.TemporaryDirectory(prefix="opsbot-demo-") as tmp:
        url = f"sqlite:///{Path(tmp) / 'opsbot.db'}"
        world = World(sample_org_text(), url, START, users=fake_users())
        try:
            story = Story(world, Narrator(world, out, color))
            out.write(
                "opsbot demo: a week in the life of a platform team, played offline against "
                "a fake Slack.\n"
            )
            for chapter in CHAPTERS:
                chapter(story)
            out.write(
                "\nThe end. Everything above went through the real Slack handlers, the "
                "database and the outbox.\n"
            )
        finally:
            world.close()
    return 0
