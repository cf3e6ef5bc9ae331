"""Demo chapter: a how-to answered by a runbook, a missed SLA that escalates to T2, a critical page."""

from __future__ import annotations

import json
from datetime import timedelta
from typing import TYPE_CHECKING, Any

from bot.business_hours import next_business_open
from bot.support import service

if TYPE_CHECKING:
    from bot.demo.story import Story

HELP = "C0HELP00001"
LIAM = "U0APP00001"  # checkout team
MIA = "U0APP00002"  # reports team


def chapter_support(story: Story) -> None:
    n = story.narrator
    world = story.world
    org = world.org
    n.chapter("Support: tickets in tiered queues with SLAs")

    # The story continues at the next business morning, when the support rotation is at work.
    opens = next_business_open(org, world.clock.now() + timedelta(minutes=1), "infra")
    story.advance(opens + timedelta(minutes=5) - world.clock.now())
    n.show()

    n.scene(f"{n.name(LIAM)} asks in #infra-help how to get at the orders database.")
    story.slack.message(HELP, LIAM, "How do I get read access to the orders postgres database?")
    n.show()
    n.scene(f"The runbook answers it; {n.name(LIAM)} presses “This solved it” and rates the help.")
    story.slack.press(_card(story, 1), "support.solved", LIAM)
    rating = next(m for m in reversed(story.fake.dms(LIAM)) if "support.rate.5" in _json(m))
    story.slack.press(rating, "support.rate.5", LIAM)
    n.show()

    n.scene(f"{n.name(MIA)} reports a failing export job; nobody answers in the thread.")
    story.slack.message(HELP, MIA, "Nightly finance export job fails with 'volume not mounted'")
    n.show()
    with world.db.session() as session:
        ticket = service.get_ticket(session, 2)
        due = ticket.first_response_due
    assert due is not None
    story.advance(due - timedelta(minutes=55) - world.clock.now())
    n.scene("Three hours in (75% of the 4-hour first-response SLA), the assignee is reminded.")
    n.show()
    story.advance(due + timedelta(minutes=1) - world.clock.now())
    n.scene("At the deadline the ticket escalates to T2 with its history; #infra-triage hears.")
    n.show()

    n.scene(f"{n.name(LIAM)} opens a critical request for Checkout (Tier 0) with /support.")
    story.slack.command("/support", "", user=LIAM, channel=HELP)
    n.show()
    view = _last_view(story)
    story.slack.submit_view(
        view,
        LIAM,
        {
            "summary": {"value": "Checkout card payments fail with TLS handshake errors"},
            "severity": _option("critical"),
            "application": _option("checkout"),
            "impact": _option("revenue"),
            "why_now": {
                "value": "Failures started 10 minutes ago with no deploy on our side; the error "
                "comes from the platform's ingress certificates."
            },
        },
    )
    n.say("It passes the critical gate (an impact type and why an engineer now would help).")
    n.show()

    n.scene("The infra manager looks at the support report.")
    story.slack.command("/support", "report infra-help 1", user="U0MGR00001", channel=HELP)
    n.show()


def _card(story: Story, number: int) -> Any:
    with story.world.db.session() as session:
        ticket = service.get_ticket(session, number)
        ref = service.outbox.message_ref(session, service.card_key(ticket))
    assert ref is not None
    return story.fake.message(*ref)


def _json(message: Any) -> str:
    return json.dumps(message.blocks or [])


def _option(value: str) -> dict[str, Any]:
    return {"value": {"type": "static_select", "selected_option": {"value": value}}}


def _last_view(story: Story) -> dict[str, Any]:
    calls = story.fake.calls_to("views.open")
    view = calls[-1].args["view"]
    return json.loads(view) if isinstance(view, str) else view
