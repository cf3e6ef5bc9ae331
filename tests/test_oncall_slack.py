"""/oncall as people use it in Slack: commands, covers, swaps, handoffs, reminders, calendars."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from itertools import pairwise
from zoneinfo import ZoneInfo

import icalendar
import pytest

from bot.config import parse_org
from bot.demo.story import sample_org_text
from bot.oncall import service
from bot.oncall.calendar import feed_token
from tests.harness import statements_run, terminate_connections

NY = ZoneInfo("America/New_York")
CHANNEL = "C0INFRA0001"
ALICE, BOB, CARLA, DEV, ERIN = (f"U0ENG0000{i}" for i in range(1, 6))
OUTSIDER = "U0APP00001"


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


def on_call(world, rotation: str, at: datetime):
    with world.db.session() as session:
        return service.who_is_on_call(session, world.org, rotation, at)


# ---- who is on call ---------------------------------------------------------------------------


def test_oncall_alone_lists_every_rotation_with_primary_and_secondary(world):
    world.slack.command("/oncall", "", user=ALICE)
    reply = answer_text(world)
    assert world.last_ack()["response_type"] == "ephemeral"
    assert world.fake.responses == []  # answered in the ack, nothing through response_url
    assert "*infra-oncall*: <@U0ENG00002>" in reply
    assert "secondary <@U0ENG00012> (data-oncall)" in reply
    assert "*infra-support*: <@U0ENG00004>" in reply
    assert "*data-oncall*: <@U0ENG00012>" in reply


def test_oncall_now_is_answered_with_one_round_trip_while_the_timelines_are_cached(world):
    """In the ack: the revision tokens are all `/oncall now` asks the database once its
    timelines are cached. On SQLite they are read on the pool of statements alone (no ping, no
    transaction around it); on PostgreSQL the event loop reads them on the ack path's own pool
    and answers without Bolt (tests/test_oncall_now_memory.py), so SQLAlchemy runs nothing."""
    world.slack.command("/oncall", "", user=ALICE)  # builds and caches the timelines
    answers = len(world.acks)
    with statements_run(world.db) as statements:
        assert world.slack.command("/oncall", "", user=ALICE).status_code == 200
    assert len(world.acks) == answers + 1
    assert "*infra-oncall*: <@U0ENG00002>" in answer_text(world)
    # (The test world then looks for outbox messages to deliver: nothing is queued.)
    assert [s for s in statements["sessions"] if not s.startswith("SELECT outbox.")] == []
    on_the_loop = world.db.url.startswith("postgresql")
    assert [" ".join(s.split()) for s in statements["alone"]] == (
        []
        if on_the_loop
        else [
            "SELECT oncall_revisions.rotation_id, oncall_revisions.revision FROM oncall_revisions"
        ]
    )


def test_oncall_now_answers_after_the_database_dropped_its_connections(world):
    if not world.db.url.startswith("postgresql"):
        pytest.skip("terminating server connections is PostgreSQL's")
    world.slack.command("/oncall", "", user=ALICE)
    assert terminate_connections(world.db) >= 1
    answers = len(world.acks)
    assert world.slack.command("/oncall", "", user=ALICE).status_code == 200
    assert len(world.acks) == answers + 1
    assert "*infra-oncall*: <@U0ENG00002>" in answer_text(world)


def test_oncall_now_for_one_team(world):
    world.slack.command("/oncall", "now data", user=ALICE)
    reply = answer_text(world)
    assert "data-oncall" in reply and "infra-oncall" not in reply.split("secondary")[0]


def test_help_names_every_subcommand(world):
    world.slack.command("/oncall", "help", user=ALICE)
    reply = reply_text(world)
    for sub in ("schedule", "cover", "swap", "load", "calendar", "notes", "cancel"):
        assert f"/oncall {sub}" in reply


def test_oncall_now_for_an_unknown_team_says_so_in_the_ack(world):
    world.slack.command("/oncall", "now <nope>", user=ALICE)
    assert world.last_ack()["response_type"] == "ephemeral"
    assert "There is no rotation or team '&lt;nope&gt;'" in answer_text(world)


def test_unknown_rotation_and_subcommand_get_clear_messages(world):
    world.slack.command("/oncall", "schedule nope", user=ALICE)
    assert "There is no rotation 'nope'" in reply_text(world)
    world.slack.command("/oncall", "dance", user=ALICE)
    assert "'dance' is not an /oncall command" in reply_text(world)
    world.slack.command("/oncall", "schedule infra-oncall <b>", user=ALICE)
    assert "'&lt;b&gt;' is not a valid weeks" in reply_text(world)


def test_schedule_shows_shifts_as_dates_each_reader_sees_in_their_zone(world):
    world.slack.command("/oncall", "schedule infra-oncall 2", user=ALICE)
    reply = reply_text(world)
    carla_starts = int(utc("2026-11-16 15:00").timestamp())
    assert f"<!date^{carla_starts}^" in reply
    assert "Mon 16 Nov 10:00 EST" in reply  # the fallback names the rotation's zone
    assert reply.count("<@U0ENG00003>") == 1
    world.slack.command("/oncall", "schedule infra-oncall 99", user=ALICE)
    assert "between 1 and 26" in reply_text(world)


# ---- covers -----------------------------------------------------------------------------------


def test_cover_tells_both_people_and_moves_the_user_group_for_its_window(world):
    world.advance(minutes=31)  # past the 10:00 handoff: Carla is on call
    assert world.fake.usergroups["S0INFRAONC"] == [CARLA]
    world.slack.command(
        "/oncall", f"cover <@{DEV}|dev> infra-oncall 2026-11-18 18:00 4h dentist", user=DEV
    )
    assert "Override #1" in reply_text(world)
    assert "Both were told" in reply_text(world)
    covered = text_of(world.fake.dms(CARLA)[-1])
    assert "<@U0ENG00004> covers your *infra-oncall*" in covered and "dentist" in covered
    assert "You cover *infra-oncall*" in text_of(world.fake.dms(DEV)[-1])
    start = utc("2026-11-18 23:00")  # 18:00 in Dev's zone (New York)
    assert on_call(world, "infra-oncall", start).primary == DEV
    world.advance(start - world.clock.now() + timedelta(minutes=1))
    assert world.fake.usergroups["S0INFRAONC"] == [DEV]
    assert "infra-oncall: <@U0ENG00004>" in world.fake.topics[CHANNEL]
    world.advance(hours=4)
    assert world.fake.usergroups["S0INFRAONC"] == [CARLA]


def test_cover_times_are_read_in_the_readers_zone(world):
    # Carla's Slack zone is America/Chicago: 18:00 there is 19:00 in New York.
    world.slack.command(
        "/oncall", f"cover <@{DEV}> infra-oncall 2026-11-18T18:00 2026-11-18T20:00", user=CARLA
    )
    with world.db.session() as session:
        (override,) = service.overrides_of(session, "infra-oncall", world.clock.now())
    assert override.start == utc("2026-11-19 00:00") and override.end == utc("2026-11-19 02:00")


def test_somebody_outside_the_rotation_cannot_cover_it(world):
    world.slack.command(
        "/oncall", f"cover <@{OUTSIDER}> infra-oncall 2026-11-18 2026-11-19", user=OUTSIDER
    )
    assert "Only members of infra-oncall, managers of team infra and opsbot admins" in reply_text(
        world
    )
    with world.db.session() as session:
        assert service.overrides_of(session, "infra-oncall", world.clock.now()) == []


def test_managers_and_admins_can_set_a_cover_for_others(world):
    world.slack.command(
        "/oncall", f"cover <@{ERIN}> infra-oncall 2026-11-20 2026-11-20", user="U0VP000001"
    )
    assert "Override #1" in reply_text(world)
    # A date alone as <to> runs to the end of that day (New York).
    with world.db.session() as session:
        (override,) = service.overrides_of(session, "infra-oncall", world.clock.now())
    assert override.end == utc("2026-11-21 05:00")


def test_bad_cover_input_gets_specific_messages(world):
    world.slack.command("/oncall", f"cover <@{DEV}> infra-oncall tomorrow 4h", user=DEV)
    assert "'tomorrow' is not a time" in reply_text(world)
    world.slack.command("/oncall", f"cover <@{DEV}> infra-oncall 2026-11-18 soon", user=DEV)
    assert "'soon' is neither a time" in reply_text(world)
    world.slack.command("/oncall", "cover @dev infra-oncall 2026-11-18 4h", user=DEV)
    assert "does not name a person" in reply_text(world)
    world.slack.command("/oncall", f"cover <@{DEV}> infra-oncall 2026-02-30 4h", user=DEV)
    assert "not a real date" in reply_text(world)


def test_cover_without_arguments_opens_a_form_that_creates_the_override(world):
    world.slack.command("/oncall", "cover", user=DEV)
    view = world.opened_view()
    assert view["callback_id"] == "oncall.cover"
    start, end = utc("2026-11-18 23:00"), utc("2026-11-19 03:00")
    world.slack.submit_view(
        view,
        DEV,
        {
            "person": {"person": {"type": "users_select", "selected_user": DEV}},
            "rotation": {
                "rotation": {"type": "static_select", "selected_option": {"value": "infra-oncall"}}
            },
            "start": {
                "start": {"type": "datetimepicker", "selected_date_time": int(start.timestamp())}
            },
            "end": {"end": {"type": "datetimepicker", "selected_date_time": int(end.timestamp())}},
            "reason": {"reason": {"type": "plain_text_input", "value": "<!channel> party"}},
        },
    )
    assert on_call(world, "infra-oncall", start).primary == DEV
    told = text_of(world.fake.dms(CARLA)[-1])
    assert "&lt;!channel&gt; party" in told and "<!channel>" not in told


def test_the_cover_form_shows_errors_on_the_form(world):
    world.slack.command("/oncall", "cover", user=OUTSIDER)
    view = world.opened_view()
    start = utc("2026-11-18 23:00")
    response = world.slack.submit_view(
        view,
        OUTSIDER,
        {
            "person": {"person": {"type": "users_select", "selected_user": OUTSIDER}},
            "rotation": {
                "rotation": {"type": "static_select", "selected_option": {"value": "infra-oncall"}}
            },
            "start": {
                "start": {"type": "datetimepicker", "selected_date_time": int(start.timestamp())}
            },
            "end": {"end": {"type": "datetimepicker", "selected_date_time": None}},
        },
    )
    assert response.json() == {"response_action": "errors", "errors": {"end": "Required"}}


def test_cancelling_a_cover_restores_the_schedule_and_tells_both(world):
    world.slack.command("/oncall", f"cover <@{DEV}> infra-oncall 2026-11-18 18:00 4h", user=DEV)
    world.slack.command("/oncall", "cancel 1", user=CARLA)
    assert "Override #1 is cancelled" in reply_text(world)
    assert on_call(world, "infra-oncall", utc("2026-11-19 00:00")).primary == CARLA
    assert "cancelled override #1" in text_of(world.fake.dms(DEV)[-1])
    world.slack.command("/oncall", "cancel 1", user=CARLA)
    assert "no active override #1" in reply_text(world)


def test_a_cover_reminds_the_coverer_before_it_starts(world):
    world.slack.command("/oncall", f"cover <@{ERIN}> infra-oncall 2026-11-19 09:00 1d", user=CARLA)
    world.advance(days=3, hours=1)  # the cover runs Thu 10:00 to Fri 10:00 New York
    reminders = [m for m in world.fake.dms(ERIN) if "Reminder: you are on call" in m.text]
    assert len(reminders) == 2  # 1 day and 1 hour before
    # ...and Carla, who takes it back when the cover ends, hears before that too.
    assert any("Reminder" in m.text for m in world.fake.dms(CARLA))


# ---- swaps ------------------------------------------------------------------------------------


def ask_erin_to_swap(world):
    world.slack.command("/oncall", f"swap <@{ERIN}> infra-oncall", user=ALICE)
    ask = world.fake.dms(ERIN)[-1]
    assert "asks to swap *infra-oncall* shifts" in text_of(ask)
    return ask


def test_an_accepted_swap_exchanges_shifts_and_everyone_involved_hears(world):
    ask = ask_erin_to_swap(world)
    assert "Asked <@U0ENG00005> to swap" in reply_text(world)
    world.slack.press(ask, "oncall.swap_accept", ERIN)
    assert on_call(world, "infra-oncall", utc("2026-12-01")).primary == ALICE
    assert on_call(world, "infra-oncall", utc("2026-12-08")).primary == ERIN
    assert "accepted your *infra-oncall* swap" in text_of(world.fake.dms(ALICE)[-1])
    assert "You accepted" in text_of(world.fake.dms(ERIN)[-1])  # the request, edited
    assert not any(b["type"] == "actions" for b in world.fake.dms(ERIN)[-1].blocks)


def test_a_declined_swap_is_reported_back(world):
    ask = ask_erin_to_swap(world)
    world.slack.press(ask, "oncall.swap_decline", ERIN)
    assert "declined your *infra-oncall* swap" in text_of(world.fake.dms(ALICE)[-1])
    assert on_call(world, "infra-oncall", utc("2026-12-01")).primary == ERIN


def test_only_the_person_asked_can_answer_a_swap(world):
    ask = ask_erin_to_swap(world)
    world.slack.press(ask, "oncall.swap_accept", DEV)
    assert "Only the person who was asked" in reply_text(world)
    assert on_call(world, "infra-oncall", utc("2026-12-01")).primary == ERIN


def test_an_unanswered_swap_expires_and_the_requester_hears(world):
    ask = ask_erin_to_swap(world)
    world.advance(days=2, minutes=1)
    assert "expired without an answer" in text_of(world.fake.dms(ALICE)[-1])
    assert "expired" in text_of(world.fake.dms(ERIN)[-1])
    assert not any(b["type"] == "actions" for b in ask.blocks)  # the request was edited
    # A click from a stale copy of the message still gets a clear answer.
    world.slack.action("oncall.swap_accept", ERIN, value="1", channel=ask.channel)
    assert "was expired already" in reply_text(world)


def test_somebody_outside_the_rotation_cannot_ask_for_a_swap(world):
    world.slack.command("/oncall", f"swap <@{ERIN}> infra-oncall", user=OUTSIDER)
    assert "Only members of infra-oncall" in reply_text(world)
    assert not world.fake.dms(ERIN)


def test_a_swap_with_yourself_is_refused(world):
    world.slack.command("/oncall", f"swap <@{ALICE}> infra-oncall", user=ALICE)
    assert "cannot swap shifts with yourself" in reply_text(world)


# ---- handoff ----------------------------------------------------------------------------------


@dataclass
class Figures:
    pages: int
    business_impacting: int
    false_alarms: int
    off_hours: int


OPENED = datetime(2026, 11, 16, 12, 0, tzinfo=UTC)


@dataclass
class Item:
    summary: str = ""
    title: str = ""
    opened_at: datetime = OPENED


def test_the_handoff_report_goes_to_the_channel_and_both_people(world):
    world.advance(minutes=31)  # 10:00 New York, Bob hands over to Carla
    (report,) = [m for m in world.fake.posts(CHANNEL) if "Handoff: infra-oncall" in text_of(m)]
    body = text_of(report)
    assert "<@U0ENG00002> hands over to <@U0ENG00003>" in body
    assert "Secondary: <@U0ENG00012> (data-oncall)" in body
    assert "Pages: 0" in body and "*Open pages*: none" in body
    assert "*Open support tickets*: none" in body
    assert "On-call share over the last quarter" in body
    for person in (BOB, CARLA):
        assert any("Handoff: infra-oncall" in text_of(m) for m in world.fake.dms(person))
    agenda = [m for m in world.fake.dms(BOB) if "operational review" in m.text]
    assert len(agenda) == 1 and "Production changes" in text_of(agenda[0])
    assert world.fake.usergroups["S0INFRAONC"] == [CARLA]
    assert world.fake.topics[CHANNEL].startswith("On call: infra-oncall: <@U0ENG00003>")


def test_the_handoff_report_shows_figures_and_open_items_from_providers(world):
    seen = {}

    def figures(session, rotation_id, start, end):
        seen["window"] = (rotation_id, start, end)
        return Figures(pages=7, business_impacting=3, false_alarms=2, off_hours=4)

    world.runtime.extras["oncall.shift_figures"] = figures
    world.runtime.extras["oncall.open_pages"] = lambda s, r: [Item(summary="disk <full>")]
    world.runtime.extras["oncall.open_tickets"] = lambda s, t: [Item(title="VPN broken")]
    world.advance(minutes=31)
    report = next(m for m in world.fake.posts(CHANNEL) if "Handoff: infra-oncall" in text_of(m))
    body = text_of(report)
    assert seen["window"] == ("infra-oncall", utc("2026-11-09 15:00"), utc("2026-11-16 15:00"))
    assert "Pages: 7 · business-impacting: 3 · false alarms: 2 · off-hours: 4" in body
    assert "disk &lt;full&gt; (open 3h)" in body
    assert "VPN broken (open 3h)" in body


def test_a_failing_provider_does_not_lose_the_handoff(world):
    def broken(*args):
        raise RuntimeError("paging is down")

    world.runtime.extras["oncall.shift_figures"] = broken
    world.advance(minutes=31)
    assert any("Handoff: infra-oncall" in text_of(m) for m in world.fake.posts(CHANNEL))


def test_the_outgoing_person_is_asked_for_notes_an_hour_before_and_they_reach_the_report(
    world_factory,
):
    world = world_factory(start=datetime(2026, 11, 16, 8, 55, tzinfo=NY))
    world.advance(minutes=5)  # 09:00, an hour before the handoff
    prompt = next(m for m in world.fake.dms(BOB) if "write your handoff notes" in m.text)
    world.slack.press(prompt, "oncall.write_notes", BOB)
    view = world.opened_view()
    assert view["callback_id"] == "oncall.notes"
    world.slack.submit_view(view, BOB, {"notes": {"notes": "Watch the *db* <failover>"}})
    assert "Saved your handoff notes" in world.fake.dms(BOB)[-1].text
    world.advance(hours=1)
    report = next(m for m in world.fake.posts(CHANNEL) if "Handoff: infra-oncall" in text_of(m))
    body = text_of(report)
    assert "Handoff notes from <@U0ENG00002>" in body
    assert "Watch the *db* &lt;failover&gt;" in body


def test_notes_can_be_written_with_the_command_but_not_by_outsiders(world):
    world.slack.command("/oncall", "notes", user=BOB)
    assert world.opened_view()["callback_id"] == "oncall.notes"
    world.slack.command("/oncall", "notes infra-oncall", user=OUTSIDER)
    assert "Only the person on call for infra-oncall" in reply_text(world)
    world.slack.command("/oncall", "notes", user=OUTSIDER)
    assert "You are not on call right now" in reply_text(world)


def test_reminders_go_out_a_day_and_an_hour_before_a_shift(world):
    world.advance(days=7)  # Dev starts Mon 23 Nov 10:00 New York
    reminders = [m for m in world.fake.dms(DEV) if "Reminder: you are on call" in m.text]
    assert len(reminders) == 2
    assert all("*infra-oncall*" in m.text for m in reminders)


def test_reminders_follow_a_swap(world):
    ask = ask_erin_to_swap(world)
    world.slack.press(ask, "oncall.swap_accept", ERIN)
    world.advance(days=14)  # through the 30 Nov handoff, which is now Alice's
    assert [m for m in world.fake.dms(ALICE) if "Reminder" in m.text]
    assert not [m for m in world.fake.dms(ERIN) if "Reminder" in m.text]


# ---- load, App Home, calendar -----------------------------------------------------------------


def test_load_reports_shares_and_flags_nobody_in_a_five_person_rotation(world_factory):
    world = world_factory(start=datetime(2027, 2, 15, 10, 0, tzinfo=NY))
    world.slack.command("/oncall", "load infra-oncall", user=ALICE)
    reply = reply_text(world)
    assert "<@U0ENG00003>: on call 3w (23%)" in reply
    assert "<@U0ENG00001>: on call 2w (15%)" in reply
    assert ":warning:" not in reply


def test_app_home_shows_your_role_and_next_shifts(world):
    world.slack.home_opened(BOB)
    home = json.dumps(world.fake.home_views[BOB]["blocks"])
    assert "You are *on call* for *infra-oncall*" in home
    assert "Your next shifts" in home and "infra-support" in home
    world.slack.home_opened("U0ENG00012")
    assert "You are *secondary* for *infra-oncall*" in json.dumps(
        world.fake.home_views["U0ENG00012"]["blocks"]
    )


def test_calendar_command_gives_a_feed_url_that_serves_six_months_of_shifts(world):
    world.slack.command("/oncall", "calendar infra-oncall", user=ALICE)
    url = next(w for w in reply_text(world).split() if w.startswith("https://"))
    token = feed_token("demo-signing-secret", "infra-oncall")
    assert url == f"https://opsbot.example.com/calendars/infra-oncall.ics?token={token}"
    response = world.http.get(f"/calendars/infra-oncall.ics?token={token}")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/calendar")
    calendar = icalendar.Calendar.from_ical(response.content)
    assert calendar["X-WR-TIMEZONE"] == "America/New_York"
    events = list(calendar.walk("VEVENT"))
    assert 26 <= len(events) <= 28
    first = events[0]
    assert first.decoded("dtstart") == utc("2026-11-09 15:00")
    assert first.decoded("dtend") == utc("2026-11-16 15:00")
    assert str(first["summary"]) == "infra-oncall: Bob Okafor"
    # Shifts meet exactly across the 8 March 2027 spring-forward, handing off at 10:00 local.
    for earlier, later in pairwise(events):
        assert earlier.decoded("dtend") == later.decoded("dtstart")
        assert later.decoded("dtstart").astimezone(NY).hour == 10


def test_calendar_feed_refuses_a_wrong_token_and_an_unknown_rotation(world):
    wrong = world.http.get("/calendars/infra-oncall.ics?token=nope")
    assert wrong.status_code == 403 and "token" in wrong.json()["error"]
    other = feed_token("demo-signing-secret", "data-oncall")
    assert world.http.get(f"/calendars/infra-oncall.ics?token={other}").status_code == 403
    assert world.http.get("/calendars/infra-oncall.ics").status_code == 403
    missing = world.http.get("/calendars/nope.ics?token=x")
    assert missing.status_code == 404 and missing.json() == {"error": "unknown rotation 'nope'"}


def test_a_member_change_in_the_config_moves_only_future_shifts_and_tells_who_moved(world):
    old = "members: [U0ENG00001, U0ENG00002, U0ENG00003, U0ENG00004, U0ENG00005]\n    start"
    new = old.replace("U0ENG00005", "U0ENG00011")  # Erin leaves, Fiona joins
    world.runtime.org = parse_org(sample_org_text().replace(old, new))
    world.advance(minutes=1)  # the next tick notices the change
    fiona = [m for m in world.fake.dms("U0ENG00011") if "shift moved" in m.text]
    assert len(fiona) == 1 and "its members changed in the config" in fiona[0].text
    erin = [m for m in world.fake.dms(ERIN) if "shift moved" in m.text]
    assert len(erin) == 1 and "Now: none in the next 26 weeks" in erin[0].text
    assert not [m for m in world.fake.dms(DEV) if "shift moved" in m.text]
    org = world.runtime.org
    with world.db.session() as session:
        now = service.who_is_on_call(session, org, "infra-oncall", world.clock.now())
        later = service.who_is_on_call(session, org, "infra-oncall", utc("2026-12-01"))
    assert (now.primary, later.primary) == (BOB, "U0ENG00011")
