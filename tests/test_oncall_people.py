"""On-call as its people meet it: covers around handoffs, one-person rotations, swaps undone,
a bot that was down over a handoff, people in two rotations or outside one, long schedules."""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

from bot.config import check_org_text
from bot.demo.fake_slack import Message
from bot.demo.story import sample_org_text
from bot.oncall import service
from handlers import org_checks

NY = ZoneInfo("America/New_York")
CHANNEL = "C0INFRA0001"
ALICE, BOB, CARLA, DEV, ERIN = (f"U0ENG0000{i}" for i in range(1, 6))
LONDON = "U0ENG00012"  # on the data team, whose zone is Europe/London
OUTSIDER = "U0APP00001"  # an application engineer, in no rotation and no platform team


def utc(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


def text_of(message) -> str:
    return message.text + json.dumps(message.blocks or [], ensure_ascii=False)


def reply_text(world) -> str:
    reply = world.last_response()
    return reply.get("text", "") + json.dumps(reply.get("blocks") or [], ensure_ascii=False)


def answer_text(world) -> str:
    """What the ack itself said (`/oncall now` is answered there, not through response_url)."""
    answer = world.last_ack()
    return answer.get("text", "") + json.dumps(answer.get("blocks") or [], ensure_ascii=False)


def handoff_reports(world) -> list[str]:
    return [text_of(m) for m in world.fake.posts(CHANNEL) if "Handoff for infra-oncall" in m.text]


def on_call(world, rotation: str, at: datetime):
    with world.db.session() as session:
        return service.who_is_on_call(session, world.org, rotation, at)


def one_person_org() -> str:
    return sample_org_text().replace(
        "members: [U0ENG00001, U0ENG00002, U0ENG00003, U0ENG00004, U0ENG00005]\n"
        '    start: 2026-11-02\n    handoff: {weekday: mon, time: "10:00"}',
        'members: [U0ENG00001]\n    start: 2026-11-02\n    handoff: {weekday: mon, time: "10:00"}',
    )


# ---- the handoff report is about the real change of hands --------------------------------------


def test_a_cover_for_the_incoming_person_starting_early_makes_carla_the_one_who_hands_over(world):
    world.advance(minutes=31)  # Mon 16 Nov 10:01: Carla's week has begun
    # Dev, who starts next Monday, takes Carla's last day as well.
    world.slack.command(
        "/oncall", f"cover <@{DEV}> infra-oncall 2026-11-22 10:00 2026-11-23 10:00", user=DEV
    )
    before = len(handoff_reports(world))
    world.advance(utc("2026-11-22 15:01") - world.clock.now())  # the cover begins
    reports = handoff_reports(world)[before:]
    assert len(reports) == 1
    assert "<@U0ENG00003> hands over to <@U0ENG00004>" in reports[0]
    assert any("operational review" in m.text for m in world.fake.dms(CARLA))
    assert world.fake.usergroups["S0INFRAONC"] == [DEV]
    world.advance(days=1)  # Mon 23 Nov 10:00, the scheduled handoff: Dev simply carries on
    reports = handoff_reports(world)[before:]
    assert len(reports) == 1, "no 'Dev hands over to Dev' at the scheduled handoff"
    reports_to_dev = [m for m in world.fake.dms(DEV) if "Handoff for infra-oncall" in m.text]
    assert len(reports_to_dev) == 1, [(m.ts, m.text[:90]) for m in reports_to_dev]
    assert not any("operational review" in m.text for m in world.fake.dms(DEV))


def test_a_one_person_rotation_never_hands_over_to_itself(world_factory):
    world = world_factory(org_yaml=one_person_org(), start=datetime(2026, 11, 16, 8, 0, tzinfo=NY))
    world.advance(weeks=2)
    assert handoff_reports(world) == []
    assert not any("hands over to" in text_of(m) for m in world.fake.dms(ALICE))
    assert not any("operational review" in m.text for m in world.fake.dms(ALICE))
    assert world.fake.usergroups["S0INFRAONC"] == [ALICE]


def test_a_short_cover_mid_shift_hands_over_and_back_truthfully(world):
    world.advance(minutes=31)  # Carla is on call
    world.slack.command(
        "/oncall", f"cover <@{DEV}> infra-oncall 2026-11-18 18:00 4h dentist", user=DEV
    )
    before = len(handoff_reports(world))
    world.advance(utc("2026-11-19 03:01") - world.clock.now())  # the cover came and went
    reports = handoff_reports(world)[before:]
    assert ["<@U0ENG00003> hands over to <@U0ENG00004>" in r for r in reports] == [True, False]
    assert "<@U0ENG00004> hands over to <@U0ENG00003>" in reports[1]
    world.advance(utc("2026-11-23 15:01") - world.clock.now())
    scheduled = handoff_reports(world)[before + 2 :]
    assert len(scheduled) == 1 and "<@U0ENG00003> hands over to <@U0ENG00004>" in scheduled[0]


# ---- swaps are undone whole --------------------------------------------------------------------


def accepted_swap(world) -> list[int]:
    # Alice (next on Mon 7 Dec) and Erin (next on Mon 30 Nov) exchange those weeks.
    world.slack.command("/oncall", f"swap <@{ERIN}> infra-oncall", user=ALICE)
    ask = next(m for m in world.fake.dms(ERIN) if "oncall.swap_accept" in json.dumps(m.blocks))
    world.slack.press(ask, "oncall.swap_accept", ERIN)
    assert on_call(world, "infra-oncall", utc("2026-12-01 12:00")).primary == ALICE
    assert on_call(world, "infra-oncall", utc("2026-12-08 12:00")).primary == ERIN
    with world.db.session() as session:
        return [o.id for o in service.overrides_of(session, "infra-oncall", world.clock.now())]


def test_cancelling_one_half_of_an_accepted_swap_cancels_both(world):
    _first, second = accepted_swap(world)
    world.slack.command("/oncall", f"cancel {second}", user=ERIN)
    assert "both halves" in reply_text(world)
    with world.db.session() as session:
        assert service.overrides_of(session, "infra-oncall", world.clock.now()) == []
    # The schedule applies again to both weeks: nobody is on call two weeks running.
    assert on_call(world, "infra-oncall", utc("2026-12-01 12:00")).primary == ERIN
    assert on_call(world, "infra-oncall", utc("2026-12-08 12:00")).primary == ALICE
    for person in (ALICE, ERIN):
        assert "both halves" in world.fake.dms(person)[-1].text


def test_a_swap_whose_first_half_has_begun_cannot_be_cancelled_by_halves(world):
    _first, second = accepted_swap(world)
    world.advance(utc("2026-12-01 12:00") - world.clock.now())  # Alice works Erin's week
    world.slack.command("/oncall", f"cancel {second}", user=ERIN)
    assert "cannot be undone" in reply_text(world) and "/oncall cover" in reply_text(world)
    with world.db.session() as session:
        assert len(service.overrides_of(session, "infra-oncall", world.clock.now())) == 2
    assert on_call(world, "infra-oncall", utc("2026-12-08 12:00")).primary == ERIN


# ---- presence: the user group and topic follow who is on call now ----------------------------


def test_after_downtime_across_a_handoff_the_user_group_and_topic_are_right_at_start(
    world_factory, dbs
):
    world = world_factory(start=datetime(2026, 11, 16, 9, 30, tzinfo=NY))
    world.settle()
    assert world.fake.usergroups["S0INFRAONC"] == [BOB]  # set on the very first start
    assert world.fake.topics[CHANNEL].startswith("On call: infra-oncall: <@U0ENG00002>")
    # The bot is down from Monday 09:30 to Wednesday: the 10:00 handoff is missed.
    world.clock.set(utc("2026-11-18 15:00"))
    from handlers import build_runtime

    restarted = build_runtime(world.settings, org=world.org, clock=world.clock, db=world.db)
    restarted.outbox.drain()
    assert world.fake.usergroups["S0INFRAONC"] == [CARLA]
    assert world.fake.topics[CHANNEL].startswith("On call: infra-oncall: <@U0ENG00003>")
    calls = len(world.fake.calls_to("usergroups.users.update"))
    build_runtime(world.settings, org=world.org, clock=world.clock, db=world.db).outbox.drain()
    assert len(world.fake.calls_to("usergroups.users.update")) == calls  # nothing to fix


# ---- people outside the rotation, people in two -------------------------------------------------


def test_a_cover_for_someone_outside_the_rotation_and_team_asks_first_and_says_so(world):
    world.slack.command(
        "/oncall", f"cover <@{OUTSIDER}> infra-oncall 2026-11-18 18:00 4h", user=CARLA
    )
    ask = world.last_response()
    assert "is not a member of *infra-oncall* or of team *infra*" in reply_text(world)
    with world.db.session() as session:
        assert service.overrides_of(session, "infra-oncall", world.clock.now()) == []
    message = Message(CHANNEL, "1.1", ask["text"], ask["blocks"], ephemeral_to=CARLA)
    world.slack.press(message, "oncall.cover_confirm", CARLA)
    assert "Override #1" in reply_text(world)
    notice = text_of(world.fake.dms(OUTSIDER)[-1])
    assert "You cover *infra-oncall*" in notice
    assert "is not in *infra-oncall* or team *infra*" in notice and "confirmed" in notice
    assert "confirmed the cover anyway" in text_of(world.fake.dms(CARLA)[-1])


def test_the_cover_form_asks_to_confirm_an_outsider(world):
    world.slack.command("/oncall", "cover", user=CARLA)
    view = world.opened_view()
    start = int(utc("2026-11-18 23:00").timestamp())
    values = {
        "person": {"person": {"type": "users_select", "selected_user": OUTSIDER}},
        "rotation": {
            "rotation": {"type": "static_select", "selected_option": {"value": "infra-oncall"}}
        },
        "start": {"start": {"type": "datetimepicker", "selected_date_time": start}},
        "end": {"end": {"type": "datetimepicker", "selected_date_time": start + 3600}},
    }
    world.slack.submit_view(view, CARLA, values)
    errors = world.last_ack()["errors"]
    assert "not a member of infra-oncall" in errors["person"]
    values["outsider"] = {
        "outsider": {"type": "checkboxes", "selected_options": [{"value": "confirmed"}]}
    }
    world.slack.submit_view(view, CARLA, values)
    assert on_call(world, "infra-oncall", utc("2026-11-18 23:30")).primary == OUTSIDER


def test_a_team_member_outside_the_rotation_covers_without_a_question(world_factory):
    text = sample_org_text().replace(
        "members: [U0ENG00001, U0ENG00002, U0ENG00003, U0ENG00004, U0ENG00005]\n    start",
        "members: [U0ENG00001, U0ENG00002, U0ENG00003, U0ENG00004, U0ENG00005]\n"
        "    # U0MGR00001 manages the team\n    start",
        1,
    )
    world = world_factory(org_yaml=text)
    world.slack.command(
        "/oncall", "cover <@U0MGR00001> infra-oncall 2026-11-18 18:00 4h", user=CARLA
    )
    assert "Override #1" in reply_text(world)


def test_one_person_on_a_rotation_and_its_secondary_is_shown_truthfully(world_factory):
    # Bob is on call for infra and, through data-oncall, its secondary too.
    text = sample_org_text().replace(
        "members: [U0ENG00011, U0ENG00012, U0ENG00013, U0ENG00014]",
        "members: [U0ENG00011, U0ENG00002, U0ENG00013, U0ENG00014]",
    )
    world = world_factory(org_yaml=text, start=datetime(2026, 11, 12, 9, 30, tzinfo=NY))
    world.slack.command("/oncall", "now infra-oncall", user=ALICE)
    reply = answer_text(world)
    assert "secondary <@U0ENG00002>" not in reply
    assert "no separate secondary: <@U0ENG00002> also holds data-oncall" in reply
    world.slack.home_opened(BOB)
    home = json.dumps(world.fake.home_views[BOB]["blocks"])
    assert "You are also its secondary (through data-oncall): nobody else backs you up" in home


def test_a_handoff_to_someone_who_is_also_the_secondary_says_there_is_no_separate_one(
    world_factory,
):
    text = sample_org_text().replace(
        "members: [U0ENG00011, U0ENG00012, U0ENG00013, U0ENG00014]",
        "members: [U0ENG00011, U0ENG00002, U0ENG00013, U0ENG00014]",
    )
    # Tue 10 Nov, 10:00 London: Bob takes data-oncall while on infra-oncall, its secondary.
    world = world_factory(org_yaml=text, start=datetime(2026, 11, 10, 4, 30, tzinfo=NY))
    world.advance(minutes=31)
    report = next(m for m in world.fake.posts("C0DATA00001") if "Handoff for data-oncall" in m.text)
    assert "No separate secondary: <@U0ENG00002> also holds infra-oncall" in text_of(report)
    assert "Secondary: <@U0ENG00002>" not in text_of(report)


def test_config_check_warns_when_two_rotations_together_break_one_week_in_four():
    text = sample_org_text().replace(
        "members: [U0ENG00011, U0ENG00012, U0ENG00013, U0ENG00014]",
        "members: [U0ENG00011, U0ENG00001, U0ENG00013, U0ENG00014]",
    )
    report = check_org_text(text, checks=org_checks())
    assert report.errors == []
    (combined,) = [i for i in report.warnings if "combined" in i.message]
    assert combined.message.startswith(
        "puts U0ENG00001 on call in 2 rotations (infra-oncall 1 week in 5, data-oncall 1 week "
        "in 4): 45% of the time combined; nobody should be on call more than 1 week in 4"
    )
    assert combined.field == "rotations[0].members"
    clean = check_org_text(sample_org_text(), checks=org_checks())
    assert not [i for i in clean.warnings if "combined" in i.message]


# ---- long schedules ------------------------------------------------------------------------------


def test_a_26_week_schedule_of_daily_shifts_lists_every_shift_with_whole_date_tokens(
    world_factory,
):
    text = sample_org_text().replace(
        '    handoff: {weekday: tue, time: "10:00"}\n    length: 1w',
        '    handoff: {weekday: tue, time: "10:00"}\n    length: 1d',
    )
    world = world_factory(org_yaml=text)
    world.slack.command("/oncall", "schedule data-oncall 26", user=LONDON)
    replies = [r.args for r in world.fake.responses]
    blocks = [b for r in replies for b in r.get("blocks") or []]
    assert all(len(b["text"]["text"]) <= 3000 for b in blocks if b["type"] == "section")
    assert all(len(r["blocks"]) <= 50 for r in replies)
    body = "\n".join(b["text"]["text"] for b in blocks if b["type"] == "section")
    lines = [line for line in body.splitlines() if "→" in line]
    # Every day of the 26 weeks (the first and last shifts overlap the window's edges).
    assert len(lines) == 26 * 7 + 1
    token = re.compile(r"<!date\^\d+\^\{date_short_pretty\} \{time\}\|[^<>]+>")
    for line in lines:
        assert len(token.findall(line)) == 2, line  # no token cut in the middle
    last_start = world.clock.now() + timedelta(weeks=26)
    assert (
        f"<!date^{int(on_call(world, 'data-oncall', last_start - timedelta(hours=1)).shift_start.timestamp())}^"
        in body
    )
