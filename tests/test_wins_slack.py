"""Wins and Challenges through Slack's request shapes: a whole cycle with two levels of managers
above three teams (VP > director > infra and data; VP > devex), reminders, a delegate, the STAR
form's gentle checks, edits after publishing, selections, the stakeholder digest and its e-mail."""

from __future__ import annotations

import json
from datetime import datetime, timedelta

import pytest
from sqlmodel import select

from bot.wins.models import WinsEntry
from tests.wins_world import (
    ALICE,
    DATA_CH,
    DATA_MGR,
    DEVEX_CH,
    DEVEX_MGR,
    DIGESTS,
    DIRECTOR,
    FIONA,
    INFRA_CH,
    INFRA_MGR,
    LEADS,
    NY,
    VP,
    SmtpServer,
    entry_values,
    make,
    texts,
    ticks,
    write,
)

START = datetime(2026, 11, 16, 10, 0, tzinfo=NY)  # Monday; the deadline is Wed 25 Nov 15:00


@pytest.fixture
def smtp():
    server = SmtpServer().start()
    yield server
    server.stop()


@pytest.fixture
def world(world_factory, smtp):
    w = make(world_factory, START)
    w.runtime.settings = w.settings.model_copy(
        update={"smtp_url": smtp.url, "mail_from": "opsbot@example.com"}
    )
    return w


def entries(world) -> list[WinsEntry]:
    with world.db.session() as session:
        return list(session.exec(select(WinsEntry).order_by(WinsEntry.id)).all())


def reminders_to(world, user) -> list:
    return [m for m in world.fake.dms(user) if "are due" in m.text or "has passed" in m.text]


def button(message, action_id):
    for block in message.blocks or []:
        for element in block.get("elements", []) + (
            [block["accessory"]] if "accessory" in block else []
        ):
            if element.get("action_id") == action_id:
                return element
    raise AssertionError(f"no {action_id} on {message.text!r}")


def choose(world, user, dm, picks, rewrites=None):
    """Press "Choose highlights" in the DM, tick `picks` (summaries), then rewrite and pass up."""
    world.slack.press(dm, "wins.select", user)
    view = world.opened_view()
    values = {}
    for block in view["blocks"]:
        if block.get("block_id", "").startswith("pick_"):
            options = block["element"]["options"]
            chosen = [o["value"] for o in options if o["text"]["text"] in picks]
            values[block["block_id"]] = {"value": ticks(*chosen)}
    world.slack.submit_view(view, user, values)
    update = world.last_ack()
    assert update["response_action"] == "update"
    rewrite = update["view"]
    state = {}
    for block in rewrite["blocks"]:
        if block["type"] == "input":
            initial = block["element"].get("initial_value", "")
            state[block["block_id"]] = {"value": (rewrites or {}).get(initial, initial)}
    return world.slack.submit_view(rewrite, user, state)


def test_whole_cycle_two_levels_three_teams(world, smtp):
    # Infra's line manager writes early: a win and an internal challenge.
    write(world, INFRA_MGR)
    write(
        world,
        INFRA_MGR,
        kind="challenge",
        summary="Security review queue delays the cache rollout",
        situation="Our release waits on a review.",
        action="We escalated to the review board.",
        result="Rollout slipped 2 weeks.",
        visibility="internal",
    )
    # Data's manager is away this cycle and delegates to Fiona.
    world.slack.command("/wins", f"delegate <@{FIONA}|fiona>", DATA_MGR)
    assert "writes and chooses for *Data Platform*" in world.last_response()["text"]
    assert "stand in for" in texts(world.fake.dms(FIONA))

    # Two days before the deadline: reminders only to those who owe an update.
    world.advance(datetime(2026, 11, 23, 15, 1, tzinfo=NY) - world.clock.now())
    assert reminders_to(world, INFRA_MGR) == []
    assert reminders_to(world, DATA_MGR) == []  # delegated
    assert len(reminders_to(world, FIONA)) == 1
    assert len(reminders_to(world, DEVEX_MGR)) == 1
    # The delegate answers from the reminder's button.
    reminder = reminders_to(world, FIONA)[0]
    world.slack.press(reminder, "wins.open", FIONA)
    view = world.opened_view()
    assert view["callback_id"] == "wins.entry"
    world.slack.submit_view(
        view,
        FIONA,
        entry_values(
            summary="Finance reports arrive by 6am",
            situation="Reports landed at 11am.",
            action="We moved the nightly job.",
            result="On time 14 of 14 days.",
        ),
    )
    # Three hours before: devex still owes, data no longer does.
    world.advance(datetime(2026, 11, 25, 12, 1, tzinfo=NY) - world.clock.now())
    assert len(reminders_to(world, FIONA)) == 1
    assert len(reminders_to(world, DEVEX_MGR)) == 2

    # The deadline: each team's entries become its digest in its channel and the digest channel.
    world.advance(datetime(2026, 11, 25, 15, 1, tzinfo=NY) - world.clock.now())
    infra_digest = texts(world.fake.posts(INFRA_CH))
    assert "*Builds are twice as fast*" in infra_digest
    assert "Security review queue" in infra_digest and "(internal)" in infra_digest
    assert "Finance reports arrive by 6am" in texts(world.fake.posts(DATA_CH))
    assert "No update from this team yet" in texts(world.fake.posts(DEVEX_CH))
    assert len(world.fake.posts(DIGESTS)) == 3
    # One late nudge to the one who did not submit.
    assert len(reminders_to(world, DEVEX_MGR)) == 3
    assert "has passed" in reminders_to(world, DEVEX_MGR)[-1].text
    # Devex writes late: its digest is updated in place.
    write(
        world,
        DEVEX_MGR,
        summary="Local dev setup in one command",
        result="Setup time from 2 days to 15 minutes.",
    )
    devex_posts = world.fake.posts(DEVEX_CH)
    assert len(devex_posts) == 1 and devex_posts[0].updates >= 1
    assert "Local dev setup in one command" in texts(devex_posts)

    # An edit after publishing updates the team digest in place.
    win = next(e for e in entries(world) if e.summary == "Builds are twice as fast")
    saved = next(
        m for m in world.fake.dms(INFRA_MGR) if m.blocks and "Builds are twice" in texts([m])
    )
    world.slack.press(saved, "wins.edit", INFRA_MGR)
    edit = world.opened_view()
    world.slack.submit_view(
        edit,
        INFRA_MGR,
        entry_values(
            summary="CI builds are twice as fast",
            situation="Continuous integration (CI) builds took 20 minutes.",
        ),
    )
    infra_posts = world.fake.posts(INFRA_CH)
    assert len(infra_posts) == 1 and "CI builds are twice as fast" in texts(infra_posts)

    # The director chooses from infra and data, rewriting one for a broader audience.
    ask = next(m for m in world.fake.dms(DIRECTOR) if "Choose" in json.dumps(m.blocks or []))
    choose(
        world,
        DIRECTOR,
        ask,
        [
            "CI builds are twice as fast",
            "Security review queue delays the cache rollout",
            "Finance reports arrive by 6am",
        ],
        rewrites={"CI builds are twice as fast": "Engineers wait half as long for builds"},
    )
    # The director's request loses its button.
    assert "chosen" in texts([world.fake.message(ask.channel, ask.ts)])
    assert "wins.select" not in json.dumps(world.fake.message(ask.channel, ask.ts).blocks)
    infra_dir = texts(
        [m for m in world.fake.posts(DIGESTS) if "Infrastructure highlights" in texts([m])]
    )
    assert "Engineers wait half as long for builds" in infra_dir
    # Once the level above has chosen, infra's entries no longer change.
    world.slack.press(saved, "wins.delete", INFRA_MGR)
    assert (
        "already chosen" in texts(world.fake.dms(INFRA_MGR))
        or "already chosen" in world.last_response()["text"]
    )
    assert win.id in {e.id for e in entries(world) if e.deleted_at is None}

    # The VP chooses everything, the internal challenge included.
    ask = next(m for m in world.fake.dms(VP) if "Choose" in json.dumps(m.blocks or []))
    choose(
        world,
        VP,
        ask,
        [
            "Engineers wait half as long for builds",
            "Security review queue delays the cache rollout",
            "Finance reports arrive by 6am",
            "Local dev setup in one command",
        ],
    )
    leads = texts(world.fake.posts(LEADS))
    assert "Engineers wait half as long for builds" in leads
    assert "Local dev setup in one command" in leads
    assert "Security review queue" not in leads  # internal: never leaves the platform org
    # The top highlights are in the digest channel for every skip manager, internal marked.
    top = texts(
        [m for m in world.fake.posts(DIGESTS) if "Platform Engineering highlights" in texts([m])]
    )
    assert "Security review queue" in top

    # The e-mail: multipart plain text and HTML, through a real SMTP server, no internal challenge.
    world.advance(timedelta(minutes=1))
    assert len(smtp.inbox.messages) == 1
    mail = smtp.inbox.messages[0]
    assert mail["X-Envelope-To"] == "cto@example.com, ceo@example.com"
    assert "Wins and Challenges" in mail["Subject"]
    plain = mail.get_body(("plain",)).get_content()
    html = mail.get_body(("html",)).get_content()
    assert "Engineers wait half as long for builds" in plain and "Security review" not in plain
    assert "<strong>Engineers wait half as long for builds</strong>" in html
    assert "Security review" not in html

    # Participation: counts in the digest channel, names only for the VP.
    closing = world.fake.posts(DIGESTS)[-1].text
    assert "3 teams" in closing and "2 of 3 teams on time, 1 late" in closing
    assert "Developer Experience" not in closing
    names = texts(world.fake.dms(VP))
    assert "Late: Developer Experience" in names


def test_engineer_proposes_and_the_line_manager_decides(world):
    write(
        world,
        ALICE,
        summary="Flaky test quarantine",
        result="Flaky failures down from 12 to 2 a week.",
    )
    proposal = next(m for m in world.fake.dms(INFRA_MGR) if "proposes" in m.text)
    assert "Flaky test quarantine" in texts([proposal])
    (entry,) = entries(world)
    assert entry.status == "proposed"
    world.slack.press(proposal, "wins.accept", INFRA_MGR)
    (entry,) = entries(world)
    assert entry.status == "accepted"
    assert "included your entry" in texts(world.fake.dms(ALICE))
    # Accepting counts as the team's submission: no reminder for infra.
    world.advance(datetime(2026, 11, 23, 15, 1, tzinfo=NY) - world.clock.now())
    assert reminders_to(world, INFRA_MGR) == []


def test_gentle_checks_show_once_and_the_writer_may_keep_the_entry(world):
    write(world, INFRA_MGR, summary="Moved to the new CDN", result="Pages are faster now.")
    errors = world.last_ack()["errors"]
    assert "number" in errors["result"]
    assert "CDN" in errors["situation"]
    assert "keep" in errors
    assert entries(world) == []
    view = world.opened_view()
    world.slack.submit_view(
        view,
        INFRA_MGR,
        entry_values(summary="Moved to the new CDN", result="Pages are faster now.", keep=True),
    )
    (entry,) = entries(world)
    assert entry.summary == "Moved to the new CDN"
    assert any("number" in w for w in entry.kept_warnings)


def test_a_shareable_challenge_naming_a_team_must_be_raised_first(world):
    write(
        world,
        INFRA_MGR,
        kind="challenge",
        summary="Waiting on data for schema changes",
        visibility="shareable",
        names_team="data",
    )
    assert "leadership" in world.last_ack()["errors"]["raised"]
    assert entries(world) == []


def test_no_update_is_a_valid_submission_and_stops_reminders(world):
    world.slack.command("/wins", "none", DEVEX_MGR)
    assert "no update" in world.last_response()["text"]
    world.advance(datetime(2026, 11, 25, 15, 1, tzinfo=NY) - world.clock.now())
    assert reminders_to(world, DEVEX_MGR) == []
    assert "No update this cycle" in texts(world.fake.posts(DEVEX_CH))


def test_missed_selection_window_passes_everything_up_uncurated(world):
    write(world, INFRA_MGR)
    write(world, DATA_MGR, summary="Finance reports arrive by 6am", result="On time 14 of 14 days.")
    world.advance(datetime(2026, 11, 25, 15, 1, tzinfo=NY) - world.clock.now())
    assert any("Choose" in json.dumps(m.blocks or []) for m in world.fake.dms(DIRECTOR))
    # One business day later (Thu 15:00), the director has not chosen.
    world.advance(datetime(2026, 11, 26, 15, 1, tzinfo=NY) - world.clock.now())
    told = [m for m in world.fake.dms(DIRECTOR) if "closed without a choice" in m.text]
    assert len(told) == 1
    assert "not curated" in texts(world.fake.posts(DIGESTS))
    ask = next(m for m in world.fake.dms(VP) if "Choose" in json.dumps(m.blocks or []))
    world.slack.press(ask, "wins.select", VP)
    view = world.opened_view()
    options = [
        o
        for b in view["blocks"]
        if b.get("block_id", "").startswith("pick_")
        for o in b["element"]["options"]
    ]
    assert {o["text"]["text"] for o in options} >= {
        "Builds are twice as fast",
        "Finance reports arrive by 6am",
    }
    assert all(
        "not curated" in o["description"]["text"] for o in options if o["text"]["text"] != "Local"
    )
    # Told once: later ticks do not repeat it.
    world.advance(timedelta(days=1))
    assert len([m for m in world.fake.dms(DIRECTOR) if "closed without a choice" in m.text]) == 1


def test_skip_manager_reads_every_entry_below_but_a_line_manager_does_not_read_others(world):
    write(world, INFRA_MGR)
    write(world, DATA_MGR, summary="Finance reports arrive by 6am", result="On time 14 of 14 days.")
    world.slack.command("/wins", "view infra-dir", DIRECTOR)
    assert "Builds are twice as fast" in world.last_response()["text"] + json.dumps(
        world.last_response().get("blocks")
    )
    world.slack.command("/wins", "view data", INFRA_MGR)
    assert "teams below you" in world.last_response()["text"]


def test_help_lists_every_command(world):
    world.slack.command("/wins", "help", INFRA_MGR)
    text = world.last_ack()["text"]
    for word in (
        "/wins news",
        "/wins none",
        "/wins delegate",
        "/wins select",
        "/wins view",
        "/wins archive",
    ):
        assert word in text


def test_app_home_shows_the_pending_submission(world):
    world.slack.home_opened(INFRA_MGR)
    home = world.fake.calls_to("views.publish")[-1].args["view"]
    home = json.loads(home) if isinstance(home, str) else home
    assert "not submitted yet" in json.dumps(home)


def test_user_text_is_escaped_in_slack_and_in_the_email(world, smtp):
    write(
        world,
        INFRA_MGR,
        summary="R&D <!channel> ships <b>faster</b>",
        result="Lead time from 9 to 3 days <script>x</script>.",
    )
    world.advance(datetime(2026, 11, 25, 15, 1, tzinfo=NY) - world.clock.now())
    digest = texts(world.fake.posts(INFRA_CH))
    assert "R&amp;D &lt;!channel&gt; ships &lt;b&gt;faster&lt;/b&gt;" in digest
    assert "<!channel>" not in digest
    # Nobody chooses: the director's and then the VP's windows pass; the VP then chooses all.
    world.advance(datetime(2026, 11, 26, 15, 1, tzinfo=NY) - world.clock.now())
    world.advance(datetime(2026, 11, 27, 15, 1, tzinfo=NY) - world.clock.now())
    assert world.fake.posts(LEADS) == []  # nothing reaches stakeholders uncurated
    missed = next(m for m in world.fake.dms(VP) if "closed without a choice" in m.text)
    choose(world, VP, missed, ["R&D <!channel> ships <b>faster</b>"])
    assert "R&amp;D &lt;!channel&gt;" in texts(world.fake.posts(LEADS))
    world.advance(timedelta(minutes=1))
    html = smtp.inbox.messages[0].get_body(("html",)).get_content()
    assert "R&amp;D &lt;!channel&gt; ships &lt;b&gt;faster&lt;/b&gt;" in html
    assert "<script>" not in html
    plain = smtp.inbox.messages[0].get_body(("plain",)).get_content()
    assert "R&D <!channel> ships <b>faster</b>" in plain


def test_people_outside_the_practice_get_clear_answers(world):
    world.slack.command("/wins", "", "U0APP00001")
    assert "not the manager or a member" in world.last_response()["text"]
    world.slack.command("/wins", "select", INFRA_MGR)
    assert "No highlights are waiting" in world.last_response()["text"]
    world.slack.command("/wins", "delegate nobody", INFRA_MGR)
    assert "@someone" in world.last_response()["text"]
    world.slack.command("/wins", "delegate <@U0ENG00002>", "U0APP00001")
    assert "Only a team's manager" in world.last_response()["text"]
    world.slack.command("/wins", "frobnicate", INFRA_MGR)
    assert "I don't know `/wins frobnicate`" in world.last_ack()["text"]


def test_someone_else_cannot_choose_a_levels_highlights(world):
    write(world, INFRA_MGR)
    world.advance(datetime(2026, 11, 25, 15, 1, tzinfo=NY) - world.clock.now())
    ask = next(m for m in world.fake.dms(DIRECTOR) if "Choose" in json.dumps(m.blocks or []))
    world.slack.press(ask, "wins.select", INFRA_MGR)
    assert "Only Infrastructure's manager" in world.last_response()["text"]


def test_app_home_shows_selections_waiting_and_the_latest_team_digest(world):
    write(world, INFRA_MGR)
    world.advance(datetime(2026, 11, 25, 15, 1, tzinfo=NY) - world.clock.now())
    world.slack.home_opened(DIRECTOR)
    home = json.dumps(world.fake.calls_to("views.publish")[-1].args["view"])
    assert "Highlights to choose for *Infrastructure*" in home
    world.slack.home_opened(INFRA_MGR)
    home = json.dumps(world.fake.calls_to("views.publish")[-1].args["view"])
    assert "Latest digest of Platform Infrastructure" in home
    assert "Builds are twice as fast" in home


def test_a_director_away_during_the_window_delegates_the_choice(world):
    write(world, INFRA_MGR)
    world.slack.command("/wins", "", DIRECTOR)
    assert "You choose highlights for Infrastructure" in world.last_response()["text"]
    world.advance(datetime(2026, 11, 25, 15, 1, tzinfo=NY) - world.clock.now())
    world.slack.command("/wins", f"delegate <@{INFRA_MGR}>", DIRECTOR)
    assert "the two weeks to Wed 25 Nov 2026" in world.last_response()["text"]
    notice = next(m for m in world.fake.dms(INFRA_MGR) if "stand in for *Infrastructure*" in m.text)
    choose(world, INFRA_MGR, notice, ["Builds are twice as fast"])
    assert "Infrastructure highlights" in texts(world.fake.posts(DIGESTS))
    # The director, back, cannot choose twice.
    ask = next(m for m in world.fake.dms(DIRECTOR) if "have written" in m.text)
    world.slack.press(ask, "wins.select", DIRECTOR)
    assert (
        "already decided" in world.last_response()["text"]
        or "Only" in world.last_response()["text"]
    )


def test_skip_manager_reads_this_cycle_so_far_and_the_last_one_at_any_time(world):
    write(world, DATA_MGR, summary="Finance reports arrive by 6am", result="On time 14 of 14 days.")
    world.advance(datetime(2026, 11, 25, 15, 1, tzinfo=NY) - world.clock.now())
    world.advance(datetime(2026, 11, 27, 15, 1, tzinfo=NY) - world.clock.now())  # windows pass
    write(world, INFRA_MGR, summary="Next cycle already has a win")
    world.slack.command("/wins", "view", VP)
    seen = json.dumps([r.args for r in world.fake.responses[-4:]])
    assert "Platform Infrastructure (so far)" in seen and "Next cycle already has a win" in seen
    assert "Finance reports arrive by 6am" in seen
    assert "Platform Engineering highlights" in seen
