"""Demo chapter: an alert at night, a storm of repeats, an escalation to the secondary after a
missed acknowledgement, a resolve with its classification, and the weekly pager load."""

from __future__ import annotations

import json
from datetime import datetime, time, timedelta
from typing import TYPE_CHECKING

from bot.oncall.service import who_is_on_call
from bot.paging import load

if TYPE_CHECKING:
    from bot.demo.story import Story

ROTATION = "infra-oncall"
ALERT = {
    "receiver": "opsbot",
    "status": "firing",
    "alerts": [
        {
            "status": "firing",
            "labels": {
                "alertname": "KubePodCrashLooping",
                "namespace": "checkout",
                "pod": "checkout-api-7d9f",
                "severity": "critical",
                "team": "infra",
            },
            "annotations": {
                "summary": "checkout-api pods are crash looping",
                "description": "checkout/checkout-api-7d9f restarted 6 times in 10 minutes.",
            },
            "startsAt": "2026-11-18T07:08:00Z",
            "endsAt": "0001-01-01T00:00:00Z",
            "generatorURL": "http://prometheus.example.com/graph?g0.expr=kube_pod_restarts",
            "fingerprint": "8f1c2a7b9d3e4f50",
        }
    ],
    "groupLabels": {"alertname": "KubePodCrashLooping"},
    "commonLabels": {"team": "infra"},
    "commonAnnotations": {},
    "externalURL": "http://alertmanager.example.com",
    "version": "4",
    "groupKey": '{}:{alertname="KubePodCrashLooping"}',
    "truncatedAlerts": 0,
}


def chapter_paging(story: Story) -> None:
    n = story.narrator
    world = story.world
    org = world.org
    token = world.settings.alert_token
    headers = {"Authorization": f"Bearer {token}"}
    n.chapter("Paging: an alert at night, an escalation, and the weekly load")

    # Whoever is on call picks up pages still open from earlier chapters (the critical support
    # request), so the night below is about the new alert.
    with world.db.session() as session:
        earlier = [p.id for p in load.open_pages(session, ROTATION)]
        on_call_now = who_is_on_call(session, org, ROTATION, world.clock.now()).primary
    if earlier and on_call_now:
        n.scene(f"{n.name(on_call_now)} acknowledges the page still open from earlier.")
        for page_id in earlier:
            message = next(
                m for m in world.fake.posts("C0INFRA0001") if m.text.startswith(f"Page #{page_id} ")
            )
            story.slack.press(message, "page.acknowledge", on_call_now)
        n.show()

    # Two in the morning, the night after wherever the story has got to.
    zone = org.rotation_zone(ROTATION)
    local_now = world.clock.now().astimezone(zone)
    night = datetime.combine(local_now.date() + timedelta(days=1), time(2, 10), tzinfo=zone)
    story.advance(night - world.clock.now())
    with world.db.session() as session:
        on_call = who_is_on_call(session, org, ROTATION, world.clock.now())
    primary, secondary = on_call.primary, on_call.secondary
    assert primary is not None and secondary is not None

    n.scene("Alertmanager fires KubePodCrashLooping for Checkout and posts it to opsbot.")
    response = world.http.post("/alerts/alertmanager", json=ALERT, headers=headers)
    world.settle()
    n.say(f"HTTP {response.status_code} {response.json()}")
    n.show()

    n.scene("The alert keeps firing: Alertmanager re-sends it 30 times in the next minute.")
    for _ in range(30):
        world.http.post("/alerts/alertmanager", json=ALERT, headers=headers)
        world.clock.advance(seconds=2)
    story.advance(seconds=30)
    pages = [
        c for c in world.fake.calls_to("chat.postMessage") if "crash looping" in c.args["text"]
    ]
    n.say(
        f"Still one page: {len(pages)} messages in all (a DM and the channel post), edited in place."
    )
    n.show()

    n.scene(
        f"{n.name(primary)} sleeps through it. 15 minutes later the page escalates to the "
        f"secondary rotation: {n.name(secondary)}."
    )
    story.advance(minutes=15)
    n.show()

    dm = next(m for m in world.fake.dms(secondary) if m.text.startswith("Page #"))
    n.scene(f"{n.name(secondary)} acknowledges, then opens the runbook linked on the page.")
    story.slack.press(dm, "page.acknowledge", secondary)
    story.slack.press(world.fake.dms(secondary)[-1], "page.runbook", secondary)
    n.show()

    story.advance(minutes=20)
    n.scene(
        f"{n.name(secondary)} rolls the deployment back as the runbook says, resolves the page "
        "and classifies it: business-impacting."
    )
    story.slack.press(world.fake.dms(secondary)[-1], "page.resolve", secondary)
    view = world.fake.calls_to("views.open")[-1].args["view"]
    story.slack.submit_view(
        view if isinstance(view, dict) else json.loads(view),
        secondary,
        {
            "classification": {
                "value": {
                    "type": "radio_buttons",
                    "selected_option": {"value": "business_impacting"},
                }
            },
            "note": {"value": "Rolled back checkout-api to the previous release."},
        },
    )
    n.show()

    story.advance(hours=7)
    n.scene(
        "In the morning the infra manager looks at the pager load: pages per week, off-hours, "
        "false alarms and how often pages fell through to the secondary."
    )
    story.slack.command("/oncall", f"load {ROTATION}", user="U0MGR00001", channel="C0INFRA0001")
    n.show()
