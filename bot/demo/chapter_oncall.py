"""Demo chapter: an on-call handoff with notes, a cover for an evening, and a swap of shifts."""

from __future__ import annotations

import json
from datetime import timedelta
from typing import TYPE_CHECKING, Any

from bot.oncall import service
from bot.oncall.schedule import Cadence

if TYPE_CHECKING:
    from bot.demo.story import Story

ROTATION = "infra-oncall"


def chapter_oncall(story: Story) -> None:
    n = story.narrator
    world = story.world
    org = world.org
    n.chapter("On call: a handoff, a cover and a swap")

    now = world.clock.now()
    zone = org.rotation_zone(ROTATION)
    handoff = Cadence.of(org.rotation(ROTATION), zone).next_handoff_after(now)
    with world.db.session() as session:
        outgoing = service.who_is_on_call(session, org, ROTATION, now).primary
        coming = service.upcoming_shifts(
            session, org, ROTATION, handoff, handoff + timedelta(weeks=4)
        )
    incoming, next_up, after_that, last = (s.person for s in coming[:4])
    assert outgoing is not None

    n.scene(f"{n.name(outgoing)} asks who is on call right now.")
    answer = story.slack.command("/oncall", "", user=outgoing, channel="C0INFRA0001")
    n.show()
    n.answered(answer)

    prompt_at = handoff - timedelta(hours=1)
    if prompt_at > world.clock.now():
        story.advance(prompt_at - world.clock.now())
        n.scene(f"An hour before the handoff, opsbot asks {n.name(outgoing)} for handoff notes.")
        n.show()
        prompt = next(m for m in story.fake.dms(outgoing) if "handoff notes" in m.text)
        story.slack.press(prompt, "oncall.write_notes", outgoing)
    else:
        n.scene(f"{n.name(outgoing)} writes handoff notes before handing over.")
        story.slack.command("/oncall", "notes infra-oncall", user=outgoing)
    n.show()
    story.slack.submit_view(
        _last_view(story),
        outgoing,
        {
            "notes": {
                "notes": "The checkout DB failover alert fired twice on Saturday night; both "
                "times the replica caught up within 5 minutes. Ticket with the vendor is open."
            }
        },
    )
    n.show()

    story.advance(handoff - world.clock.now())
    n.scene(
        "Handoff. The report goes to the team channel and to both people; the user group and "
        "the channel topic follow, and the person coming off gets the review agenda to prepare."
    )
    n.show()

    evening = (handoff + timedelta(days=2)).astimezone(zone).date()
    n.scene(
        f"{n.name(next_up)} offers to cover {n.name(incoming)}'s Wednesday evening (a school play)."
    )
    story.slack.command(
        "/oncall",
        f"cover <@{next_up}> infra-oncall {evening.isoformat()} 18:00 4h school play",
        user=incoming,
        channel="C0INFRA0001",
    )
    n.show()

    n.scene(f"{n.name(last)} asks {n.name(after_that)} to swap their next shifts.")
    story.slack.command("/oncall", f"swap <@{after_that}> infra-oncall", user=last)
    n.show()
    ask = story.fake.dms(after_that)[-1]
    n.scene(f"{n.name(after_that)} accepts in the DM.")
    story.slack.press(ask, "oncall.swap_accept", after_that)
    n.show()

    n.scene("Someone outside the team tries to change the rotation.")
    story.slack.command(
        "/oncall", f"cover <@U0APP00001> infra-oncall {evening.isoformat()} 4h", user="U0APP00001"
    )
    n.show()

    with world.db.session() as session:
        (cover,) = [
            o
            for o in service.overrides_of(session, ROTATION, world.clock.now())
            if o.kind == "cover"
        ]
    story.advance(cover.start - world.clock.now() + timedelta(minutes=1))
    n.scene(
        "Wednesday evening: the cover begins and the user group follows (the data team's own "
        "Tuesday handoff and a reminder went out on the way)."
    )
    n.show()

    n.scene(f"{n.name(incoming)} checks the schedule and opens the App Home.")
    story.slack.command("/oncall", "schedule infra-oncall 4", user=incoming)
    story.slack.home_opened(incoming)
    n.show()

    n.scene(f"{n.name(last)} subscribes to the rotation's calendar.")
    story.slack.command("/oncall", "calendar infra-oncall", user=last)
    n.show()


def _last_view(story: Story) -> dict[str, Any]:
    calls = story.fake.calls_to("views.open")
    view = calls[-1].args["view"]
    return json.loads(view) if isinstance(view, str) else view
