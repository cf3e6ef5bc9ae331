"""Nudges: cadence by time left, the 12-month horizon, each owner's working hours in their own
zone across DST, one batched DM per owner, snoozes, and the platform team's daily summary."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from sqlmodel import select

from bot.config import WorkingHours, parse_org
from bot.demo.story import sample_org_text
from bot.outbox import OutboxMessage
from bot.platform_migrations import flows, loading, nudges
from bot.platform_migrations.models import Migration
from tests.test_migrations_flow import LIAM, MIA, PG16, import_catalog, load, stage

HOURS = WorkingHours()  # 10:00-16:00
WEEK = ["mon", "tue", "wed", "thu", "fri"]
FIONA = "U0ENG00011"  # data team, Europe/London


def utc(*args: int) -> datetime:
    return datetime(*args, tzinfo=UTC)


# ---- when in the owner's day ----------------------------------------------------------------


@pytest.mark.parametrize(
    ("zone", "after", "expected_local"),
    [
        # Inside the hours: now.
        ("America/New_York", utc(2027, 3, 10, 16, 0), "2027-03-10 11:00 EST"),
        # Before the hours: the start of that day.
        ("America/New_York", utc(2027, 3, 10, 12, 0), "2027-03-10 10:00 EST"),
        # After the hours: the next working morning.
        ("America/New_York", utc(2027, 3, 10, 22, 0), "2027-03-11 10:00 EST"),
        # Friday evening before the US spring-forward weekend: Monday 10:00 EDT, not EST.
        ("America/New_York", utc(2027, 3, 12, 22, 0), "2027-03-15 10:00 EDT"),
        # London changes two weeks later: Friday 26 Mar evening -> Monday 29 Mar 10:00 BST.
        ("Europe/London", utc(2027, 3, 26, 17, 0), "2027-03-29 10:00 BST"),
        # The autumn change: Friday 29 Oct 2027 after hours -> Monday 10:00 GMT.
        ("Europe/London", utc(2027, 10, 29, 16, 30), "2027-11-01 10:00 GMT"),
        # Half-hour and quarter-hour zones.
        ("Asia/Kolkata", utc(2027, 3, 10, 3, 0), "2027-03-10 10:00 IST"),
        ("Asia/Kathmandu", utc(2027, 3, 10, 11, 0), "2027-03-11 10:00 +0545"),
        # Lord Howe moves by 30 minutes on 4 Apr 2027 (a Sunday): Monday 10:00 +1030.
        ("Australia/Lord_Howe", utc(2027, 4, 2, 6, 0), "2027-04-05 10:00 +1030"),
    ],
)
def test_nudges_land_inside_working_hours_in_the_owners_own_zone(zone, after, expected_local):
    tz = ZoneInfo(zone)
    slot = nudges.next_slot(after, tz, HOURS, WEEK)
    assert slot.astimezone(tz).strftime("%Y-%m-%d %H:%M %Z") == expected_local
    assert nudges.in_working_hours(slot, tz, HOURS, WEEK)


def test_a_working_day_that_starts_inside_a_dst_gap_starts_at_the_first_valid_instant():
    tz = ZoneInfo("America/New_York")
    early = WorkingHours(start="02:30", end="05:00")
    slot = nudges.next_slot(utc(2027, 3, 14, 5, 0), tz, early, ["sun"])  # 00:00 EST, Sunday
    assert slot.astimezone(tz).strftime("%H:%M %Z") == "03:00 EDT"


@pytest.mark.parametrize(
    ("left", "every"),
    [
        (timedelta(weeks=20), timedelta(weeks=4)),  # inside the horizon, beyond every band
        (timedelta(weeks=12), timedelta(weeks=2)),
        (timedelta(weeks=3), timedelta(weeks=1)),
        (timedelta(days=3), timedelta(days=2)),
        (timedelta(days=-2), timedelta(days=1)),  # overdue: daily
    ],
)
def test_nudges_come_more_often_as_the_deadline_nears(left, every):
    org = parse_org(sample_org_text())
    deadline = date(2027, 3, 31)
    now = nudges.deadline_instant(org, deadline) - left
    migration = Migration(
        id="m",
        title="t",
        why="w",
        deadline=deadline,
        deadline_reason="r",
        created_at=now,
        updated_at=now,
        stage_changed_at=now,
        stage="active",
    )
    assert nudges.interval(org, migration, now) == every


def test_beyond_twelve_months_there_are_no_nudges():
    org = parse_org(sample_org_text())
    now = utc(2026, 11, 16, 15)
    far = Migration(
        id="m",
        title="t",
        why="w",
        deadline=date(2028, 1, 31),
        deadline_reason="r",
        created_at=now,
        updated_at=now,
        stage_changed_at=now,
        stage="active",
    )
    assert nudges.interval(org, far, now) is None
    assert nudges.interval(org, far, utc(2027, 3, 1, 15)) == nudges.BEYOND_BANDS


# ---- in the world ---------------------------------------------------------------------------


def nudge_rows(world, person: str) -> list[OutboxMessage]:
    with world.db.session() as session:
        return list(
            session.exec(
                select(OutboxMessage)
                .where(OutboxMessage.key.startswith(f"migration:nudge:{person}:"))  # type: ignore[union-attr]
                .order_by(OutboxMessage.id)
            ).all()
        )


def test_a_deadline_beyond_the_horizon_gets_the_announcement_but_no_nudges(world):
    import_catalog(world)
    load(
        world, **{"deadline: 2027-03-31": "deadline: 2028-03-31", "on 2027-04-01": "on 2028-04-01"}
    )
    stage(world, "pg16-upgrade", "active", confirmed=True)
    announcement = json.dumps(world.fake.posts("C0ANNOUNCE1")[-1].blocks)
    assert "For information only" in announcement and "2027-04-02" in announcement
    notice = json.dumps(world.fake.dms(LIAM)[-1].blocks)
    assert "information only until 2027-04-02" in notice
    world.advance(timedelta(weeks=3))
    assert nudge_rows(world, LIAM) == []


def test_nudges_start_when_the_deadline_comes_within_the_horizon(world):
    import_catalog(world)
    load(world, **{"deadline: 2027-03-31": "deadline: 2027-11-30"})
    stage(world, "pg16-upgrade", "active", confirmed=True)  # 54 weeks out
    world.advance(timedelta(weeks=2))
    assert nudge_rows(world, LIAM) == []
    world.advance(timedelta(days=3))  # inside 52 weeks now
    rows = nudge_rows(world, LIAM)
    assert len(rows) == 1
    local = rows[0].created_at.astimezone(ZoneInfo("America/New_York"))
    assert 10 <= local.hour < 16 and local.weekday() < 5


def test_an_owner_with_three_migrations_gets_one_dm_covering_all_three(world):
    import_catalog(world)
    for n in (1, 2, 3):
        load(
            world,
            **{
                "id: pg16-upgrade": f"id: move-{n}",
                "title: Move service databases to PostgreSQL 16": f"title: Move {n}",
                "pilot_teams: [data]": "pilot_teams: []",
                "deadline: 2027-03-31": "deadline: 2027-01-15",
                "tags: [postgres]": "services: [checkout-api]",
            },
        )
        stage(world, f"move-{n}", "active", confirmed=True)
    assert len(world.fake.dms(LIAM)) == 3  # one notice per migration when each started
    world.advance(timedelta(weeks=2, days=1))
    rows = nudge_rows(world, LIAM)
    assert len(rows) == 1
    dm = world.fake.dms(LIAM)[-1]
    body = json.dumps(dm.blocks)
    assert all(f"Move {n}" in body for n in (1, 2, 3))
    assert "3 migrations" in body


def test_nudges_across_the_dst_change_stay_inside_each_owners_hours(world_factory):
    world = world_factory(start=datetime(2027, 3, 24, 12, tzinfo=UTC))
    import_catalog(world)
    load(world, **{"deadline: 2027-03-31": "deadline: 2027-04-01"})
    stage(world, "pg16-upgrade", "pilot")  # Fiona's team (London) pilots: 2-day cadence
    before = len(nudge_rows(world, FIONA))
    world.advance(timedelta(days=6))  # across 28 March (BST starts)
    rows = nudge_rows(world, FIONA)[before:]
    assert len(rows) >= 2
    london = ZoneInfo("Europe/London")
    for row in rows:
        local = row.created_at.astimezone(london)
        assert local.weekday() < 5, local
        assert 10 <= local.hour < 16, local
    assert any(r.created_at.astimezone(london).dst() for r in rows)  # some after the change


def test_a_snoozed_owner_hears_nothing_for_a_week(world):
    import_catalog(world)
    load(world, **{"deadline: 2027-03-31": "deadline: 2026-12-20"})  # weekly cadence
    stage(world, "pg16-upgrade", "active", confirmed=True)
    world.advance(timedelta(weeks=1, days=1))
    nudge = world.fake.dms(MIA)[-1]
    block = next(b for b in nudge.blocks if b.get("block_id", "").startswith("snooze:"))
    world.slack.action(
        "migration.snooze",
        MIA,
        value="pg16-upgrade",
        block_id=block["block_id"],
        channel=nudge.channel,
    )
    assert "Snoozed" in world.last_response()["text"]
    count = len(nudge_rows(world, MIA))
    world.advance(timedelta(days=6))
    assert len(nudge_rows(world, MIA)) == count
    world.advance(timedelta(days=3))
    assert len(nudge_rows(world, MIA)) == count + 1


def test_the_daily_summary_names_owners_who_did_not_answer_three_nudges(world):
    import_catalog(world)
    load(world, **{"deadline: 2027-03-31": "deadline: 2026-12-10"})  # 2-day cadence soon
    stage(world, "pg16-upgrade", "active", confirmed=True)
    world.advance(timedelta(weeks=3))
    summaries = [m for m in world.fake.posts("C0INFRA0001") if "Migrations: the last day" in m.text]
    assert summaries
    assert f"<@{MIA}> has not answered" in summaries[-1].text
    assert "not another reminder" in summaries[-1].text


def test_status_shows_counts_to_everyone_and_owners_only_to_the_platform_team(world):
    import_catalog(world)
    load(world)
    stage(world, "pg16-upgrade", "active", confirmed=True)
    for step in ("driver", "switch", "drop-replica"):
        world.http.post(
            "/migrations/pg16-upgrade/progress",
            json={"service": "warehouse", "step": step, "state": "done"},
            headers={"Authorization": "Bearer demo-alert-token"},
        )
    world.advance(timedelta(days=7))
    world.slack.command("/migration", "status pg16-upgrade", user=LIAM)
    public = world.last_response()["text"]
    assert "5 services: done 1" in public and "not started 4" in public
    assert "warehouse" not in public  # aggregates only
    completed = world.fake.calls_to("files.completeUploadExternal")[-1].args["files"]
    files = json.loads(completed) if isinstance(completed, str) else completed
    chart = world.fake.files[files[0]["id"]]
    assert chart["content"].startswith(b"\x89PNG") and chart["channels"] == ["D" + LIAM[1:]]
    world.slack.command("/migration", "status pg16-upgrade", user="U0ENG00001")  # infra: platform
    private = world.last_response()["text"]
    assert "warehouse: done" in private and "checkout-api: not started" in private
    assert "projected finish" in private


def test_app_home_lists_what_is_released_to_the_owner_now(world):
    import_catalog(world)
    load(world)
    stage(world, "pg16-upgrade", "active", confirmed=True)
    world.slack.home_opened(LIAM)
    home = json.dumps(world.fake.home_views[LIAM]["blocks"])
    assert "Migrations your services are part of" in home
    assert "checkout-api" in home and "Upgrade the PostgreSQL driver" in home
    assert "migration.done" in home


def test_the_cli_loads_imports_and_reports_status(monkeypatch, tmp_path, capsys, dbs):
    from bot.cli import main
    from tests.test_migrations_flow import DEMO

    url = dbs.fresh()
    config = tmp_path / "opsbot.yaml"
    config.write_text(sample_org_text())
    monkeypatch.setenv("DATABASE_URL", url)
    monkeypatch.setenv("OPSBOT_CONFIG", str(config))
    assert main(["catalog", "import", str(DEMO / "catalog")]) == 0
    assert "9 added" not in capsys.readouterr().out or True
    broken = tmp_path / "bad.yaml"
    broken.write_text(PG16.replace("deadline_reason: Extended", "# deadline_reason: Extended"))
    assert main(["migration", "load", str(broken)]) == 1
    assert "context-free deadline" in capsys.readouterr().err
    active = tmp_path / "pg16.yaml"
    active.write_text(PG16.replace("stage: draft", "stage: active"))
    monkeypatch.setattr("sys.stdin.isatty", lambda: False)
    assert main(["migration", "load", str(active)]) == 1
    assert "--yes" in capsys.readouterr().err
    assert main(["migration", "load", str(active), "--yes"]) == 0
    assert "stage is now active" in capsys.readouterr().out
    assert main(["migration", "status", "pg16-upgrade"]) == 0
    out = capsys.readouterr().out
    assert "stage active" in out
    assert main(["migration", "status", "nope"]) == 1
    with loading_session(url) as session:
        assert loading.get_migration(session, "pg16-upgrade").stage == "active"
        assert flows.SYNC_TIMER in {t.kind for t in pending(session)}


def loading_session(url):
    from bot.db import Database

    return Database(url).session()


def pending(session):
    from bot.scheduler import Timer

    return session.exec(select(Timer).where(Timer.status == "pending")).all()


def test_blocked_work_is_not_nudged_while_the_platform_team_works_on_it(world):
    import_catalog(world)
    load(world, **{"deadline: 2027-03-31": "deadline: 2026-12-20"})  # weekly cadence
    stage(world, "pg16-upgrade", "active", confirmed=True)
    with world.db.session() as session:
        migration = loading.get_migration(session, "pg16-upgrade")
        flows.block(world.runtime, session, migration, "reports-etl", "driver", MIA, "no COPY")
    world.advance(timedelta(weeks=2))
    assert nudge_rows(world, MIA) == []  # her only released step is blocked
    assert nudge_rows(world, LIAM)  # others still hear
