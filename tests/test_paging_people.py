"""Paging as its people meet it at 03:00: who may press the buttons, who is reached and who is
not, stale buttons, restarts, one person on two rotations, a rotation gone from the config."""

from __future__ import annotations

import copy
import json

from sqlmodel import select

from bot.config import parse_org
from bot.db import Database
from bot.demo.story import sample_org_text
from bot.paging.models import PageEvent
from handlers import build_runtime
from tests.paging_samples import alertmanager_alert, alertmanager_body
from tests.test_paging import (
    INFRA,
    MANAGER,
    NEXT_PRIMARY,
    PRIMARY,
    SECONDARY,
    dms,
    page_row,
    pages_in,
    send,
    text_of,
    timeline,
)

APP_ENGINEER = "U0APP00001"  # sees the page in the team channel; not a responder
ADMIN = "U0VP000001"
INFRA_MEMBER = "U0ENG00004"  # on infra-oncall, not on call this week
DATA_MEMBER = "U0ENG00013"  # on data-oncall, the page's second step


def page_by_hand(world, target: str, user: str = APP_ENGINEER, summary: str = "Checkout is down"):
    world.slack.command("/page", f"{target} {summary}", user=user, channel="C0GENERAL01")
    view = world.opened_view()
    world.slack.submit_view(
        view,
        user,
        {
            "summary": {"value": summary},
            "impact": {"value": "No customer can pay"},
            "why": {"value": "Only the on-call engineer can roll the ingress back"},
        },
    )
    return view


def ephemerals_to(world, user: str) -> list[str]:
    return [
        c.args["text"] for c in world.fake.calls_to("chat.postEphemeral") if c.args["user"] == user
    ]


# ---- who may act on a page --------------------------------------------------------------------


def test_an_application_engineer_cannot_acknowledge_and_so_silence_the_escalation(world):
    page_id = send(world, "alertmanager", alertmanager_body()).json()["page_ids"][0]
    world.slack.press(pages_in(world, INFRA)[0], "page.acknowledge", APP_ENGINEER)
    refusal = world.last_response()
    assert refusal["response_type"] == "ephemeral"
    assert "Only the people it notified, members of infra-oncall and data-oncall" in refusal["text"]
    assert page_row(world, page_id).status == "triggered"
    world.advance(minutes=15)
    assert len(dms(world, SECONDARY)) == 1  # the chain went on


def test_an_outsider_cannot_resolve_or_escalate_and_no_modal_opens(world):
    page_id = send(world, "alertmanager", alertmanager_body()).json()["page_ids"][0]
    post = pages_in(world, INFRA)[0]
    world.slack.press(post, "page.resolve", APP_ENGINEER)
    assert "can resolve page #1" in world.last_response()["text"]
    assert not world.fake.calls_to("views.open")
    world.slack.press(post, "page.escalate", APP_ENGINEER)
    assert "can escalate page #1" in world.last_response()["text"]
    assert not dms(world, SECONDARY)
    assert page_row(world, page_id).status == "triggered"


def test_the_requester_may_escalate_but_not_acknowledge_or_resolve(world):
    page_by_hand(world, "infra")
    post = pages_in(world, INFRA)[0]
    world.slack.press(post, "page.acknowledge", APP_ENGINEER)
    assert "You asked for this page: you can press *Escalate*" in world.last_response()["text"]
    world.slack.press(post, "page.escalate", APP_ENGINEER)
    assert f"<@{SECONDARY}> notified" in world.last_response()["text"]
    assert len(dms(world, SECONDARY)) == 1
    assert ("escalated", APP_ENGINEER) in timeline(world, 1)


def test_members_of_the_pages_rotations_managers_and_admins_may_respond(world):
    for responder in (INFRA_MEMBER, DATA_MEMBER, MANAGER, ADMIN):
        send(world, "generic", {"summary": f"Disk full ({responder})", "labels": {"team": "infra"}})
    pages = [m for m in pages_in(world, INFRA)]
    for message, responder in zip(pages, (INFRA_MEMBER, DATA_MEMBER, MANAGER, ADMIN), strict=True):
        world.slack.press(message, "page.acknowledge", responder)
    for page_id in range(1, 5):
        assert page_row(world, page_id).status == "acknowledged"


def test_classifying_is_for_responders_too(world):
    send(world, "alertmanager", alertmanager_body())
    send(world, "alertmanager", alertmanager_body(alertmanager_alert(status="resolved")))
    world.slack.press(pages_in(world, INFRA)[0], "page.classify", APP_ENGINEER)
    assert "can classify page #1" in world.last_response()["text"]


# ---- stale buttons ---------------------------------------------------------------------------


def test_acknowledge_on_an_old_copy_of_a_resolved_page_says_when_and_by_whom(world):
    send(world, "alertmanager", alertmanager_body())
    old_dm = copy.deepcopy(dms(world, PRIMARY)[0])
    world.advance(minutes=20)
    world.slack.press(dms(world, SECONDARY)[0], "page.resolve", SECONDARY)
    world.slack.submit_view(
        world.opened_view(),
        SECONDARY,
        {
            "classification": {
                "value": {
                    "type": "radio_buttons",
                    "selected_option": {"value": "business_impacting"},
                }
            }
        },
    )
    world.slack.press(old_dm, "page.acknowledge", PRIMARY)
    reply = world.last_response()["text"]
    assert "was already resolved at <!date^" in reply and f"(by <@{SECONDARY}>)" in reply
    world.slack.press(old_dm, "page.escalate", PRIMARY)
    assert "already resolved" in world.last_response()["text"]
    world.slack.press(old_dm, "page.resolve", PRIMARY)
    assert "already resolved" in world.last_response()["text"]
    assert page_row(world, 1).resolved_by == SECONDARY


def test_acknowledging_a_page_someone_escalated_meanwhile_is_accepted_and_stops_the_chain(world):
    send(world, "alertmanager", alertmanager_body())
    old_dm = copy.deepcopy(dms(world, PRIMARY)[0])
    world.slack.press(dms(world, PRIMARY)[0], "page.escalate", PRIMARY)
    world.slack.press(old_dm, "page.acknowledge", PRIMARY)  # changed their mind: taking it
    assert page_row(world, 1).status == "acknowledged"
    world.advance(hours=2)
    assert not dms(world, MANAGER)


# ---- who is reached ----------------------------------------------------------------------------

LONELY = """
timezone: America/New_York
teams:
  - {id: infra, name: Infra, channel: C0INFRA0001, managers: [U0MGR00001]}
rotations:
  - {id: infra-oncall, team: infra, kind: oncall, members: [U0ENG00001, U0ENG00002, U0ENG00003, U0ENG00004],
     start: 2027-01-04, handoff: {weekday: mon, time: "10:00"}}
"""


def test_page_to_a_rotation_with_nobody_on_call_says_nobody_was_reached_and_what_to_do(
    world_factory,
):
    world = world_factory(org_yaml=LONELY)  # the rotation starts in January
    view = page_by_hand(world, "infra-oncall")
    assert "Right now this page reaches nobody" in json.dumps(view)
    (told,) = ephemerals_to(world, APP_ENGINEER)
    assert "Nobody could be reached" in told and "nobody is on call" in told
    assert f"Call <@{MANAGER}>" in told and "is out" not in told
    (post,) = pages_in(world, INFRA)
    assert "Nobody could be reached" in text_of(post)
    assert page_row(world, 1).notified == []


def test_nobody_reached_names_managers_given_by_e_mail_without_waiting_on_the_database(
    world_factory,
):
    world = world_factory(
        org_yaml=LONELY.replace("managers: [U0MGR00001]", "managers: [maya@example.com]")
    )
    page_by_hand(world, "infra-oncall")
    (told,) = ephemerals_to(world, APP_ENGINEER)
    assert f"Call <@{MANAGER}>" in told


def test_page_that_reaches_someone_says_who(world):
    page_by_hand(world, "infra")
    (told,) = ephemerals_to(world, APP_ENGINEER)
    assert f"Page #1 reached <@{PRIMARY}>" in told and "<#C0INFRA0001>" in told


def on_both_rotations(org_text: str) -> str:
    """Bob, on call for infra this week, also holds data-oncall (infra's secondary) this week."""
    return org_text.replace(
        "members: [U0ENG00011, U0ENG00012, U0ENG00013, U0ENG00014]",
        "members: [U0ENG00011, U0ENG00002, U0ENG00013, U0ENG00014]",
    )


def test_fall_through_skips_a_person_already_notified_and_reaches_the_next_human(world_factory):
    world = world_factory(org_yaml=on_both_rotations(sample_org_text()))
    send(world, "alertmanager", alertmanager_body())
    world.advance(minutes=15)
    assert len(dms(world, PRIMARY)) == 1  # not paged a second time by the fall-through
    assert len(dms(world, MANAGER)) == 1  # the next human, at once
    events = timeline(world, 1)
    assert ("skipped", PRIMARY) in events and ("notified", MANAGER) in events
    # The repeat pass pages whoever is on call then again (Carla took over at 10:00).
    world.advance(minutes=15)
    assert len(dms(world, NEXT_PRIMARY)) == 1


def test_a_person_whose_address_matches_no_slack_user_is_shown_unreachable_and_skipped(
    world_factory,
):
    org = sample_org_text().replace(
        '"user:U0MGR00001", after: 30m', '"user:ghost@example.com", after: 30m'
    )
    world = world_factory(org_yaml=org)
    send(world, "alertmanager", alertmanager_body())
    world.advance(minutes=30)
    assert ("unreachable", None) in timeline(world, 1)
    with world.db.session() as session:
        line = session.exec(select(PageEvent).where(PageEvent.kind == "unreachable")).one()
    assert "ghost@example.com matches no Slack user" in line.detail
    post = text_of(pages_in(world, INFRA)[0])
    assert "unreachable" in post and "ghost@example.com" in post
    assert all(
        c.args["channel"] != "ghost@example.com" for c in world.fake.calls_to("chat.postMessage")
    )
    # The chain does not wait on nobody: the repeat pass starts at once (Carla is on call
    # since the 10:00 handoff).
    assert len(dms(world, NEXT_PRIMARY)) == 1


# ---- restarts and config changes ----------------------------------------------------------------


def test_a_page_whose_rotation_was_removed_from_the_config_still_escalates(world):
    send(world, "alertmanager", alertmanager_body())
    # data-oncall is dissolved; the page's policy (copied when it opened) still names it.
    edited = (
        sample_org_text()
        .replace('      - {notify: "rotation:data-oncall", after: 15m}\n', "")
        .replace("    secondary: data-oncall\n", "")
        .replace("    secondary: infra-oncall\n", "")
    )
    start = edited.index("  - id: data-oncall")
    end = edited.index("escalation_policies:")
    world.runtime.org = parse_org(edited[:start] + edited[end:])
    world.advance(minutes=15)
    assert len(dms(world, MANAGER)) == 1  # skipped to the manager at once, not stuck
    with world.db.session() as session:
        skipped = session.exec(select(PageEvent).where(PageEvent.kind == "skipped")).one()
    assert "no longer in the config" in skipped.detail
    # Its members may still act on a page that notified them; the admins always may.
    world.slack.press(dms(world, MANAGER)[0], "page.acknowledge", ADMIN)
    assert page_row(world, 1).status == "acknowledged"


def test_a_page_acknowledged_just_before_a_restart_is_not_escalated_after_it(world):
    send(world, "alertmanager", alertmanager_body())
    world.slack.press(dms(world, PRIMARY)[0], "page.acknowledge", PRIMARY)
    world.clock.advance(minutes=40)
    restarted_db = Database(world.db.url)
    restarted = build_runtime(world.settings, org=world.org, clock=world.clock, db=restarted_db)
    try:
        restarted.scheduler.tick()
        restarted.outbox.drain()
    finally:
        restarted_db.dispose()
    assert not dms(world, SECONDARY) and not dms(world, MANAGER)


# ---- other zones -------------------------------------------------------------------------------


def test_page_times_are_date_tokens_so_a_secondary_in_london_reads_london_time(world):
    send(world, "alertmanager", alertmanager_body())
    world.advance(minutes=15)
    (dm,) = dms(world, SECONDARY)  # Gus, in London
    blocks = text_of(dm)
    # 09:30 New York is 14:30 in London: Slack renders the token in the reader's zone.
    assert "<!date^1794839400^{date_short_pretty} {time}|Mon 16 Nov 09:30 EST>" in blocks
    assert "<!date^1794840300^{time}|09:45 EST>" in blocks  # the timeline line of the fall-through
    assert "Mon 16 Nov 09:30 EST" not in blocks.replace("|Mon 16 Nov 09:30 EST>", "")


def test_home_tab_shows_open_pages_with_date_tokens(world):
    from handlers.paging import home_section

    send(world, "alertmanager", alertmanager_body())
    section = json.dumps(home_section(world.runtime, PRIMARY))
    assert "<!date^" in section and "|Mon 16 Nov 09:30 EST>" in section
