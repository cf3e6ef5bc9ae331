"""Demo chapter: Wins and Challenges, from the reminders to the stakeholder e-mail and the
quarter's record."""

from __future__ import annotations

import io
import json
from contextlib import redirect_stdout
from datetime import timedelta
from email.message import EmailMessage
from typing import TYPE_CHECKING, Any

from bot.wins import reports
from bot.wins.cycles import CycleCalendar

if TYPE_CHECKING:
    from bot.demo.story import Story

VERA, DIEGO = "U0VP000001", "U0DIR00001"
MAYA, TOM, ALICE = "U0MGR00001", "U0MGR00002", "U0ENG00001"


def _select(value: str) -> dict[str, Any]:
    return {"type": "static_select", "selected_option": {"value": value}}


def _ticks(*values: str) -> dict[str, Any]:
    return {"type": "checkboxes", "selected_options": [{"value": v} for v in values]}


def _entry(kind: str, summary: str, situation: str, action: str, result: str, **kw: Any) -> dict:
    return {
        "kind": {"value": _select(kind)},
        "summary": {"value": summary},
        "situation": {"value": situation},
        "action": {"value": action},
        "result": {"value": result},
        "visibility": {"value": _select(kw.get("visibility", "shareable"))},
        "raised": {"value": _ticks()},
        "keep": {"value": _ticks(*(["keep"] if kw.get("keep") else []))},
    }


def _last_view(story: Story) -> dict[str, Any]:
    view = story.fake.calls_to("views.open")[-1].args["view"]
    return json.loads(view) if isinstance(view, str) else view


def _ack(story: Story) -> dict[str, Any]:
    response = story.slack.last_response
    return response.json() if response is not None and response.content else {}


def _button_message(story: Story, user: str, action_id: str) -> Any:
    for message in reversed(story.fake.dms(user)):
        if action_id in json.dumps(message.blocks or []):
            return message
    raise LookupError(f"no message with {action_id} for {user}")


def _choose(story: Story, user: str, rewrites: dict[str, str]) -> None:
    """Press "Choose highlights", tick everything, rewrite what `rewrites` names, pass it up."""
    story.slack.press(_button_message(story, user, "wins.select"), "wins.select", user)
    view = _last_view(story)
    picks = {}
    for block in view["blocks"]:
        if block.get("block_id", "").startswith("pick_"):
            options = block["element"]["options"]
            picks[block["block_id"]] = {"value": _ticks(*(o["value"] for o in options))}
    story.slack.submit_view(view, user, picks)
    rewrite = _ack(story)["view"]
    state = {}
    for block in rewrite["blocks"]:
        if block["type"] == "input":
            text = block["element"].get("initial_value", "")
            state[block["block_id"]] = {"value": rewrites.get(text, text)}
    story.slack.submit_view(rewrite, user, state)


def chapter_wins(story: Story) -> None:
    n = story.narrator
    world = story.world
    n.chapter("Wins and Challenges: two weeks of news, walked up the org tree")
    mails: list[EmailMessage] = []
    world.runtime.extras["mail.transport"] = mails.append

    n.scene(f"{n.name(MAYA)} writes her team's first win with /wins.")
    story.slack.command("/wins", "", MAYA)
    n.show()
    story.slack.submit_view(
        _last_view(story),
        MAYA,
        _entry(
            "win",
            "Checkout deploys no longer wait on the CDN",
            "Every Checkout deploy waited 25 minutes for a CDN purge.",
            "We moved static assets to versioned paths, so nothing needs purging.",
            "Deploys take 6 minutes instead of 31; 14 deploys this cycle.",
        ),
    )
    errors = _ack(story).get("errors", {})
    n.say("The form's gentle checks (shown once, never blocking): " + " | ".join(errors.values()))
    n.scene(f"{n.name(MAYA)} expands the acronym and saves again.")
    story.slack.submit_view(
        _last_view(story),
        MAYA,
        _entry(
            "win",
            "Checkout deploys no longer wait on the CDN",
            "Every Checkout deploy waited 25 minutes for a content delivery network (CDN) purge.",
            "We moved static assets to versioned paths, so nothing needs purging.",
            "Deploys take 6 minutes instead of 31; 14 deploys this cycle.",
        ),
    )
    n.show()

    n.scene(f"{n.name(ALICE)} proposes an entry; {n.name(MAYA)} takes it in.")
    story.slack.command("/wins", "", ALICE)
    story.slack.submit_view(
        _last_view(story),
        ALICE,
        _entry(
            "challenge",
            "Security review queue delays the cache rollout",
            "The shared cache needs a security review before production.",
            "We asked the review board for a slot and answered their questions the same day.",
            "The rollout slips by 2 weeks.",
            visibility="internal",
        ),
    )
    story.slack.press(_button_message(story, MAYA, "wins.accept"), "wins.accept", MAYA)
    n.show()

    calendar = CycleCalendar.of(world.org)
    deadline = calendar.next_deadline_after(world.clock.now())
    story.advance(deadline - timedelta(days=2) + timedelta(minutes=1) - world.clock.now())
    n.scene("Two days before the deadline, only the manager who has not written hears about it.")
    n.show()

    n.scene(f"{n.name(TOM)} starts from the reminder's operations news (his rotation's pages).")
    story.slack.press(_button_message(story, TOM, "wins.open_news"), "wins.open_news", TOM)
    n.show()
    story.slack.submit_view(
        _last_view(story),
        TOM,
        _entry(
            "win",
            "A quiet two weeks on call, and a rescue for infra",
            "Our rotation had no pages; at 02:10 on Friday infra's page fell through to us.",
            "Hana rolled the bad Checkout deploy back within 20 minutes using the runbook.",
            "Checkout was back in 20 minutes; finance reports were on time 10 of 10 days.",
        ),
    )
    n.show()

    story.advance(deadline + timedelta(minutes=1) - world.clock.now())
    n.scene("The deadline: each team's entries become its digest; the director is asked to choose.")
    n.show()

    n.scene(f"{n.name(DIEGO)} picks from infra and data, rewriting one for a wider audience.")
    _choose(
        story,
        DIEGO,
        {"Checkout deploys no longer wait on the CDN": "Checkout ships five times faster"},
    )
    n.show()

    n.scene(f"{n.name(VERA)} picks from the director's highlights and sends them on.")
    _choose(story, VERA, {})
    story.advance(timedelta(minutes=1))
    n.show()
    n.say("The internal challenge is in the org's digest but never reaches the stakeholders.")
    for mail in mails:
        n.say(f"✉️  e-mail to {mail['To']}: {mail['Subject']}")
        body = mail.get_body(("plain",))
        text = body.get_content() if body is not None else ""
        n.out.write("\n".join("      " + line for line in text.splitlines()) + "\n")
        html = mail.get_body(("html",))
        n.say(f"(and an HTML part of {len(html.get_content()) if html else 0} characters)")

    n.scene("For the quarterly business review: `opsbot wins export --quarter 2026Q4`.")
    with world.db.session() as session:
        quarter = "2026Q4"
        markdown = reports.export_markdown(session, world.org, quarter)
    buffer = io.StringIO()
    with redirect_stdout(buffer):
        print(markdown)
    n.out.write("\n".join("      " + line for line in buffer.getvalue().splitlines()) + "\n")
