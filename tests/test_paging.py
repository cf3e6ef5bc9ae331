"""Paging end to end: alerts over HTTP, /page with its modal, the buttons, escalation on timers."""

from __future__ import annotations

import copy
import json
from datetime import datetime
from zoneinfo import ZoneInfo

import pytest
from sqlmodel import select

from bot.config import parse_org
from bot.db import Database
from bot.demo.story import sample_org_text
from bot.demo.world import ALERT_TOKEN
from bot.paging import service, targets
from bot.paging.models import Page, PageEvent
from handlers import build_runtime
from tests.harness import statements_run
from tests.paging_samples import alertmanager_alert, alertmanager_body, grafana_body

NY = ZoneInfo("America/New_York")
INFRA = "C0INFRA0001"
PRIMARY, NEXT_PRIMARY, SECONDARY, MANAGER = "U0ENG00002", "U0ENG00003", "U0ENG00012", "U0MGR00001"


def send(world, source, body, token=ALERT_TOKEN):
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    if isinstance(body, bytes | str):
        response = world.http.post(f"/alerts/{source}", content=body, headers=headers)
    else:
        response = world.http.post(f"/alerts/{source}", json=body, headers=headers)
    world.settle()
    return response


def page_row(world, page_id) -> Page:
    with world.db.session() as session:
        return service.get_page(session, page_id)


def timeline(world, page_id) -> list[tuple[str, str | None]]:
    with world.db.session() as session:
        return [(e.kind, e.actor) for e in service.page_events(session, page_id)]


def pages_in(world, channel):
    """The page messages in a channel or DM (other capabilities post in the same channels)."""
    return [m for m in world.fake.posts(channel) if m.text.startswith("Page #")]


def dms(world, user):
    return pages_in(world, user)


def button_ids(message) -> set[str]:
    return {
        e["action_id"]
        for b in message.blocks or []
        for e in b.get("elements", [])
        if "action_id" in e
    }


def text_of(message) -> str:
    return json.dumps(message.blocks, ensure_ascii=False)


# ---- alerts in --------------------------------------------------------------------------------


def test_alertmanager_alert_pages_the_primary_by_dm_and_in_the_team_channel(world):
    response = send(world, "alertmanager", alertmanager_body())
    assert response.status_code == 202
    body = response.json()
    (page_id,) = body["page_ids"]
    assert body["alerts"] == [
        {"fingerprint": "c3b1f4a9e2d01a77", "action": "opened", "page_id": page_id}
    ]
    (dm,) = dms(world, PRIMARY)
    (post,) = pages_in(world, INFRA)
    for message in (dm, post):
        assert "crash looping" in message.text
        assert {"page.acknowledge", "page.escalate", "page.resolve"} <= button_ids(message)
        # The runbook whose front matter names KubePodCrashLooping is on the page.
        assert "Pods crash-looping" in text_of(message)
    page = page_row(world, page_id)
    assert page.policy_id == "infra-default"  # alert_routes: team=infra
    assert page.rotation_id == "infra-oncall" and page.primary_user == PRIMARY
    assert page.runbook == "kube-pod-crashlooping"
    assert page.off_hours is False  # Monday 09:30 in New York
    assert ("notified", PRIMARY) in timeline(world, page_id)


def test_grafana_alert_is_routed_by_its_labels(world):
    response = send(world, "grafana", grafana_body())
    assert response.status_code == 202
    page = page_row(world, response.json()["page_ids"][0])
    assert page.source == "grafana" and page.policy_id == "infra-default"  # service=checkout
    assert page.runbook == "ingress-5xx"


def test_generic_alert_pages_too(world):
    response = send(
        world, "generic", {"summary": "Nightly backup failed", "labels": {"team": "infra"}}
    )
    assert response.status_code == 202
    assert dms(world, PRIMARY)[0].text.endswith("Nightly backup failed")


@pytest.mark.parametrize("token", [None, "wrong-token", ""])
def test_alerts_without_the_right_bearer_token_are_refused_with_401(world, token):
    response = send(world, "alertmanager", alertmanager_body(), token=token)
    assert response.status_code == 401
    assert "token" in response.json()["error"]
    assert response.headers["www-authenticate"].startswith("Bearer")
    with world.db.session() as session:
        assert session.exec(select(Page)).all() == []


def test_an_unknown_alert_source_is_404(world):
    response = send(world, "nagios", {"summary": "x"})
    assert response.status_code == 404
    assert response.json()["sources"] == ["alertmanager", "grafana", "generic"]


def test_a_bad_body_is_400_naming_the_field(world):
    response = send(world, "alertmanager", alertmanager_body(alertmanager_alert(status="burning")))
    assert response.status_code == 400
    assert response.json()["field"] == "alerts[0].status"
    response = send(world, "generic", b"not json")
    assert response.status_code == 400 and "JSON" in response.json()["error"]


def test_an_unroutable_alert_is_422_and_nothing_of_its_batch_is_stored(world):
    good = alertmanager_alert()
    lost = alertmanager_alert("Mystery", fingerprint="0bad", labels={"team": "finance"})
    response = send(world, "alertmanager", alertmanager_body(good, lost))
    assert response.status_code == 422
    assert response.json()["field"] == "alerts[1].labels"
    assert response.json()["labels"]["team"] == "finance"
    with world.db.session() as session:
        assert session.exec(select(Page)).all() == []
    assert not world.fake.posts()


def test_an_unroutable_alert_goes_to_the_default_policy_when_one_is_set(world_factory):
    world = world_factory(org_yaml=sample_org_text() + "\nalert_default_policy: infra-default\n")
    response = send(
        world,
        "alertmanager",
        alertmanager_body(alertmanager_alert("Mystery", labels={"team": "finance"})),
    )
    assert response.status_code == 202
    assert page_row(world, response.json()["page_ids"][0]).policy_id == "infra-default"


# ---- deduplication ----------------------------------------------------------------------------


def test_the_same_fingerprint_while_open_adds_a_repeat_instead_of_a_new_page(world):
    first = send(world, "alertmanager", alertmanager_body()).json()
    world.advance(minutes=2)
    again = send(world, "alertmanager", alertmanager_body()).json()
    assert again["page_ids"] == first["page_ids"]
    assert again["alerts"][0]["action"] == "repeated"
    page = page_row(world, first["page_ids"][0])
    assert page.repeat_count == 2
    assert len(dms(world, PRIMARY)) == 1 and len(pages_in(world, INFRA)) == 1
    # The post is edited in place, within half a minute (repeats are batched into one edit).
    assert "×2 alerts" not in text_of(pages_in(world, INFRA)[0])
    world.advance(seconds=30)
    assert "×2 alerts" in text_of(pages_in(world, INFRA)[0])


def test_an_acknowledgement_is_shown_at_once_and_not_undone_by_a_batched_repeat(world):
    send(world, "alertmanager", alertmanager_body())
    send(world, "alertmanager", alertmanager_body())  # a repeat edit waits for its window
    world.slack.press(pages_in(world, INFRA)[0], "page.acknowledge", PRIMARY)
    assert "Acknowledged" in text_of(pages_in(world, INFRA)[0])
    world.advance(minutes=1)
    post = pages_in(world, INFRA)[0]
    assert "Acknowledged" in text_of(post) and "×2 alerts" in text_of(post)


def test_a_resolved_alert_resolves_its_page_and_a_new_firing_opens_a_new_one(world):
    page_id = send(world, "alertmanager", alertmanager_body()).json()["page_ids"][0]
    resolved = send(world, "alertmanager", alertmanager_body(alertmanager_alert(status="resolved")))
    assert resolved.json()["alerts"][0]["action"] == "resolved"
    page = page_row(world, page_id)
    assert page.status == "resolved" and page.classification is None
    (post,) = pages_in(world, INFRA)
    assert button_ids(post) >= {"page.classify"} and "page.acknowledge" not in button_ids(post)
    # The alert cleared, so the chain stops: nobody else is paged for it.
    world.advance(hours=2)
    assert not dms(world, SECONDARY)
    reopened = send(world, "alertmanager", alertmanager_body()).json()["page_ids"][0]
    assert reopened != page_id


def test_a_resolved_alert_without_an_open_page_changes_nothing(world):
    response = send(world, "alertmanager", alertmanager_body(alertmanager_alert(status="resolved")))
    assert response.status_code == 202
    assert response.json() == {
        "status": "accepted",
        "page_ids": [],
        "alerts": [{"fingerprint": "c3b1f4a9e2d01a77", "action": "no_open_page", "page_id": None}],
    }


def test_an_alert_storm_makes_one_page_and_one_message_per_fingerprint(world):
    fingerprints = [f"fp{i:02d}" for i in range(20)]
    for _round in range(10):
        for fp in fingerprints:
            body = alertmanager_body(alertmanager_alert(f"Alert{fp}", fingerprint=fp))
            response = world.http.post(
                "/alerts/alertmanager",
                json=body,
                headers={"Authorization": f"Bearer {ALERT_TOKEN}"},
            )
            assert response.status_code == 202
        world.advance(seconds=6)  # 200 alerts in a minute; the outbox drains as time passes
    world.advance(seconds=30)
    # (other capabilities post too as time passes, e.g. the 10:00 handoff)
    posts = [
        c for c in world.fake.calls_to("chat.postMessage") if c.args["text"].startswith("Page #")
    ]
    assert len(posts) == 20 * 2  # a DM and a channel post per page
    # Repeats are batched: each message is edited about once per 30 seconds, not per alert.
    assert len(world.fake.calls_to("chat.update")) <= 20 * 2 * 3
    with world.db.session() as session:
        pages = session.exec(select(Page)).all()
    assert len(pages) == 20 and all(p.repeat_count == 10 for p in pages)
    assert all("×10 alerts" in text_of(m) for m in pages_in(world, INFRA))


# ---- escalation -------------------------------------------------------------------------------


def test_page_escalates_to_the_secondary_after_15_minutes_without_an_acknowledgement(world):
    page_id = send(world, "alertmanager", alertmanager_body()).json()["page_ids"][0]
    world.advance(minutes=14)
    assert not dms(world, SECONDARY)
    world.advance(minutes=1)
    (dm,) = dms(world, SECONDARY)
    assert "crash looping" in dm.text
    page = page_row(world, page_id)
    assert page.fell_through is True and page.notified == [PRIMARY, SECONDARY]
    assert ("escalated", None) in timeline(world, page_id)
    # Earlier messages were edited in place to show the escalation.
    assert "step 2 of 3" in text_of(pages_in(world, INFRA)[0])


def test_acknowledging_stops_the_escalation(world):
    send(world, "alertmanager", alertmanager_body())
    (dm,) = dms(world, PRIMARY)
    world.slack.press(dm, "page.acknowledge", PRIMARY)
    world.advance(hours=3)
    assert not dms(world, SECONDARY) and not dms(world, MANAGER)
    dm = dms(world, PRIMARY)[0]
    assert dm.updates >= 1
    assert "Acknowledged" in text_of(dm) and f"<@{PRIMARY}>" in text_of(dm)
    assert "page.acknowledge" not in button_ids(dm)


def test_repeat_runs_the_chain_again_then_the_page_says_nobody_acknowledged(world):
    page_id = send(world, "alertmanager", alertmanager_body()).json()["page_ids"][0]
    world.advance(minutes=30)
    assert len(dms(world, MANAGER)) == 1
    # The manager's step gets 15 minutes too; then (repeat: 1) the chain runs again. The primary
    # shift has handed over at 10:00, so the new person on call is paged.
    world.advance(minutes=15)
    assert len(dms(world, NEXT_PRIMARY)) == 1
    world.advance(minutes=30)
    assert len(dms(world, MANAGER)) == 2
    world.advance(minutes=15)
    kinds = [k for k, _ in timeline(world, page_id)]
    assert kinds[-1] == "escalation_exhausted"
    assert page_row(world, page_id).status == "triggered"  # still open for whoever answers
    world.advance(hours=5)
    assert len(dms(world, MANAGER)) == 2


NOBODY_ON_CALL = """
timezone: America/New_York
teams:
  - {id: infra, name: Infra, channel: C0INFRA0001}
  - {id: data, name: Data, channel: C0DATA00001}
rotations:
  - {id: infra-oncall, team: infra, kind: oncall, members: [U0ENG00001, U0ENG00002, U0ENG00003, U0ENG00004],
     start: 2027-01-04, handoff: {weekday: mon, time: "10:00"}}
  - {id: data-oncall, team: data, kind: oncall, members: [U0ENG00011, U0ENG00012, U0ENG00013, U0ENG00014],
     start: 2026-11-03, handoff: {weekday: tue, time: "10:00"}}
escalation_policies:
  - id: infra-default
    steps:
      - {notify: "rotation:infra-oncall", after: 0m}
      - {notify: "rotation:data-oncall", after: 15m}
alert_routes:
  - match: {team: infra}
    policy: infra-default
"""


def test_a_step_whose_rotation_has_nobody_on_call_is_skipped_not_waited_on(world_factory):
    world = world_factory(org_yaml=NOBODY_ON_CALL)  # infra-oncall only starts in January
    page_id = send(world, "alertmanager", alertmanager_body()).json()["page_ids"][0]
    assert len(dms(world, SECONDARY)) == 1  # at once, not after 15 minutes
    events = timeline(world, page_id)
    assert events[:3] == [("opened", None), ("skipped", None), ("notified", SECONDARY)]
    assert page_row(world, page_id).fell_through is True


def test_the_policy_is_copied_onto_the_page_so_later_config_edits_do_not_change_it(world):
    page_id = send(world, "alertmanager", alertmanager_body()).json()["page_ids"][0]
    edited = sample_org_text().replace(
        '"rotation:data-oncall", after: 15m', '"user:U0VP000001", after: 15m'
    )
    world.runtime.org = parse_org(edited)
    world.advance(minutes=15)
    assert len(dms(world, SECONDARY)) == 1
    assert not dms(world, "U0VP000001")
    assert page_row(world, page_id).policy["steps"][1]["notify"] == "rotation:data-oncall"


def test_a_due_escalation_survives_a_restart(world):
    page_id = send(world, "alertmanager", alertmanager_body()).json()["page_ids"][0]
    # The process stops; 20 minutes later a new one starts on the same database and catches up.
    world.clock.advance(minutes=20)
    restarted_db = Database(world.db.url)
    restarted = build_runtime(world.settings, org=world.org, clock=world.clock, db=restarted_db)
    try:
        assert restarted.scheduler.tick() >= 1
        restarted.outbox.drain()
    finally:
        restarted_db.dispose()
    assert len(dms(world, SECONDARY)) == 1
    assert page_row(world, page_id).fell_through is True
    world.tick()  # the old process must not fire it a second time
    assert len(dms(world, SECONDARY)) == 1


def test_escalate_button_notifies_the_next_step_now(world):
    page_id = send(world, "alertmanager", alertmanager_body()).json()["page_ids"][0]
    world.slack.press(dms(world, PRIMARY)[0], "page.acknowledge", PRIMARY)
    world.slack.press(dms(world, PRIMARY)[0], "page.escalate", PRIMARY)
    assert len(dms(world, SECONDARY)) == 1
    page = page_row(world, page_id)
    assert page.status == "triggered" and page.acknowledged_by is None
    assert ("escalated", PRIMARY) in timeline(world, page_id)
    # Escalated and unacknowledged again: the chain carries on from there.
    world.advance(minutes=15)
    assert len(dms(world, MANAGER)) == 1


def test_escalating_past_the_last_step_is_refused_clearly(world_factory):
    world = world_factory(org_yaml=NOBODY_ON_CALL.replace("start: 2027-01-04", "start: 2026-11-02"))
    send(world, "alertmanager", alertmanager_body())
    dm = copy.deepcopy(dms(world, PRIMARY)[0])
    world.slack.press(dm, "page.escalate", PRIMARY)
    second = dms(world, SECONDARY)[0]
    assert "page.escalate" not in button_ids(second)
    world.slack.press(dm, "page.escalate", PRIMARY)  # an old copy of the buttons
    assert "nobody further to escalate to" in world.last_response()["text"]


# ---- responders -------------------------------------------------------------------------------


def test_a_second_acknowledgement_is_told_who_acknowledged_first(world):
    send(world, "alertmanager", alertmanager_body())
    post = copy.deepcopy(pages_in(world, INFRA)[0])  # as a second reader still sees it
    world.slack.press(post, "page.acknowledge", PRIMARY)
    world.slack.press(post, "page.acknowledge", "U0ENG00004")
    reply = world.last_response()["text"]
    # A date token: each reader sees their own zone; the fallback names the team's.
    assert "already acknowledged at <!date^1794839400^" in reply
    assert "|Mon 16 Nov 09:30 EST>" in reply and f"(by <@{PRIMARY}>)" in reply
    with world.db.session() as session:
        assert service.get_page(session, 1).acknowledged_by == PRIMARY


def test_a_second_acknowledgement_is_answered_from_a_read_and_writes_nothing(world):
    send(world, "alertmanager", alertmanager_body())
    post = copy.deepcopy(pages_in(world, INFRA)[0])
    world.slack.press(post, "page.acknowledge", PRIMARY)
    with statements_run(world.db) as run:
        world.slack.press(post, "page.acknowledge", "U0ENG00004")
    assert "already acknowledged" in world.last_response()["text"]
    # The press opens no write transaction (nor pings a connection for one): the page is read
    # alone, and the only writes are the inbox's own (the request stored, claimed, done). The
    # outbox, woken after any work, looks for messages to send.
    assert [s for s in run["sessions"] if "FROM outbox" not in s] == []
    assert [s for s in run["alone"] if s.startswith("SELECT pages.")] != []
    writes = [s for s in run["alone"] if not s.startswith("SELECT")]
    assert writes and all("inbox_events" in s for s in writes), writes


def test_resolving_asks_for_a_classification_and_updates_every_copy(world):
    page_id = send(world, "alertmanager", alertmanager_body()).json()["page_ids"][0]
    world.slack.press(dms(world, PRIMARY)[0], "page.resolve", PRIMARY)
    view = world.opened_view()
    assert view["callback_id"] == "page.resolve"
    world.slack.submit_view(view, PRIMARY, {})  # nothing chosen
    assert world.last_ack()["errors"]["classification"]
    assert page_row(world, page_id).status == "triggered"
    world.slack.submit_view(
        view,
        PRIMARY,
        {
            "classification": {
                "value": {"type": "radio_buttons", "selected_option": {"value": "false_alarm"}}
            },
            "note": {"value": "Threshold too tight <!channel>"},
        },
    )
    page = page_row(world, page_id)
    assert page.status == "resolved" and page.classification == "false_alarm"
    assert page.resolved_by == PRIMARY and page.open_key is None
    for message in (dms(world, PRIMARY)[0], pages_in(world, INFRA)[0]):
        blocks = text_of(message)
        assert "Resolved" in blocks and "False alarm" in blocks
        assert "&lt;!channel&gt;" in blocks and "<!channel>" not in blocks
        assert not button_ids(message) & {"page.acknowledge", "page.escalate", "page.resolve"}
    world.advance(hours=2)
    assert not dms(world, SECONDARY)


def test_a_page_resolved_by_its_alert_is_classified_later(world):
    page_id = send(world, "alertmanager", alertmanager_body()).json()["page_ids"][0]
    send(world, "alertmanager", alertmanager_body(alertmanager_alert(status="resolved")))
    world.slack.press(pages_in(world, INFRA)[0], "page.classify", PRIMARY)
    view = world.opened_view()
    assert view["callback_id"] == "page.classify"
    world.slack.submit_view(
        view,
        PRIMARY,
        {
            "classification": {
                "value": {"type": "radio_buttons", "selected_option": {"value": "deploy_noise"}}
            }
        },
    )
    page = page_row(world, page_id)
    assert page.classification == "deploy_noise" and page.classified_by == PRIMARY
    assert "page.classify" not in button_ids(pages_in(world, INFRA)[0])


def test_the_runbook_button_opens_the_runbook(world):
    send(world, "alertmanager", alertmanager_body())
    world.slack.press(dms(world, PRIMARY)[0], "page.runbook", PRIMARY)
    view = world.opened_view()
    assert "Pods crash-looping" in json.dumps(view)
    assert "kubectl" in json.dumps(view)


# ---- /page --------------------------------------------------------------------------------------


def test_page_help_explains_the_command(world):
    world.slack.command("/page", "help", user="U0APP00001")
    assert "/page <rotation|team>" in world.last_response()["text"]


def test_page_by_hand_asks_for_business_impact_and_why_paging_helps(world):
    world.slack.command("/page", "infra Checkout is down", user="U0APP00001", channel="C0GENERAL01")
    view = world.opened_view()
    assert view["callback_id"] == "page.request"
    assert f"<@{PRIMARY}>" in json.dumps(view)  # who it reaches first
    world.slack.submit_view(view, "U0APP00001", {"summary": {"value": "Checkout is down"}})
    errors = world.last_ack()["errors"]
    assert set(errors) == {"impact", "why"}
    with world.db.session() as session:
        assert session.exec(select(Page)).all() == []
    world.slack.submit_view(
        view,
        "U0APP00001",
        {
            "summary": {"value": "Checkout is down"},
            "impact": {"value": "No customer can pay since 09:20"},
            "why": {"value": "The ingress changed at 09:15; only infra can roll it back"},
        },
    )
    (dm,) = dms(world, PRIMARY)
    blocks = text_of(dm)
    assert "No customer can pay since 09:20" in blocks and "only infra can roll it back" in blocks
    assert pages_in(world, INFRA)
    with world.db.session() as session:
        (page,) = session.exec(select(Page)).all()
    assert page.requested_by == "U0APP00001" and page.source == "manual"
    assert page.runbook == "ingress-5xx"  # found by keywords in the summary
    confirmation = world.fake.calls_to("chat.postEphemeral")[-1].args
    assert confirmation["user"] == "U0APP00001" and f"#{page.id}" in confirmation["text"]


def test_page_to_a_rotation_without_its_own_policy_uses_the_rotation_and_its_secondary(world):
    target = targets.page_target(world.org, "data-oncall")
    assert target.policy_id == "rotation:data-oncall" and target.team_id == "data"
    with world.db.session() as session:
        page = service.trigger_page(
            world.runtime,
            session,
            policy_id=target.policy_id,
            summary="Reports are stale",
            team_id=target.team_id,
            requested_by="U0APP00002",
        )
        page_id = page.id
    world.settle()
    assert dms(world, SECONDARY) and pages_in(world, "C0DATA00001")
    world.advance(minutes=15)
    assert dms(world, PRIMARY)  # infra-oncall is data-oncall's secondary
    assert page_row(world, page_id).fell_through


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("nowhere Something", "no rotation, team or escalation policy 'nowhere'"),
        ("infra-support Something", "support rotation"),
    ],
)
def test_page_to_an_unknown_or_support_rotation_is_refused(world, text, message):
    world.slack.command("/page", text, user="U0APP00001")
    assert message in world.last_response()["text"]
    assert not world.fake.calls_to("views.open")


def test_trigger_page_validates_its_input(world):
    from bot.errors import InvalidInput, UnknownPolicy, UnknownTeam

    with world.db.session() as session:
        with pytest.raises(InvalidInput):
            service.trigger_page(world.runtime, session, policy_id="infra-default", summary="  ")
        with pytest.raises(UnknownPolicy):
            service.trigger_page(world.runtime, session, policy_id="nope", summary="x")
        with pytest.raises(UnknownTeam):
            service.trigger_page(
                world.runtime, session, policy_id="infra-default", summary="x", team_id="nope"
            )


# ---- off-hours, people by e-mail, App Home ----------------------------------------------------


@pytest.mark.parametrize(
    ("local", "off_hours"),
    [
        (datetime(2026, 11, 16, 10, 30), False),  # Monday morning
        (datetime(2026, 11, 16, 22, 0), True),  # Monday night
        (datetime(2026, 11, 21, 11, 0), True),  # Saturday
        (datetime(2026, 12, 25, 11, 0), True),  # a holiday
        (datetime(2026, 11, 2, 8, 30), True),  # the day after the clocks went back: before 9
        (datetime(2026, 11, 2, 9, 30), False),
        (datetime(2026, 3, 9, 9, 30), False),  # the day after the clocks went forward
    ],
)
def test_off_hours_comes_from_the_teams_business_hours(world_factory, local, off_hours):
    world = world_factory(start=local.replace(tzinfo=NY))
    with world.db.session() as session:
        page = service.trigger_page(world.runtime, session, policy_id="infra-default", summary="x")
    assert page.off_hours is off_hours


def test_people_given_by_email_are_resolved_before_they_are_paged(world_factory):
    text = sample_org_text().replace(
        '"user:U0MGR00001", after: 30m', '"user:maya@example.com", after: 30m'
    )
    world = world_factory(org_yaml=text)
    send(world, "alertmanager", alertmanager_body())
    world.advance(minutes=30)
    assert len(dms(world, MANAGER)) == 1


def test_app_home_lists_the_open_pages_that_reached_you(world):
    send(world, "alertmanager", alertmanager_body())
    world.slack.home_opened(PRIMARY)
    home = world.fake.calls_to("views.publish")[-1].args["view"]
    assert "Your open pages" in json.dumps(home) and "crash looping" in json.dumps(home)
    world.slack.home_opened("U0ENG00005")
    assert "Your open pages" not in json.dumps(
        world.fake.calls_to("views.publish")[-1].args["view"]
    )


def test_every_page_change_is_in_its_timeline_with_who_and_when(world):
    page_id = send(world, "alertmanager", alertmanager_body()).json()["page_ids"][0]
    world.advance(minutes=3)
    world.slack.press(dms(world, PRIMARY)[0], "page.acknowledge", PRIMARY)
    with world.db.session() as session:
        events = session.exec(select(PageEvent).where(PageEvent.page_id == page_id)).all()
    ack = next(e for e in events if e.kind == "acknowledged")
    assert ack.actor == PRIMARY and ack.at == world.clock.now()
    assert "acknowledged by" in text_of(pages_in(world, INFRA)[0])
