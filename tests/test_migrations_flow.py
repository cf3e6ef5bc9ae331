"""A platform migration as its people meet it: the file, the pilot, the announcement, owners'
notices, the dependency tree across services, progress from owners, CI and the catalog."""

from __future__ import annotations

import json
from datetime import timedelta
from importlib import resources
from pathlib import Path
from typing import Any

import pytest
from sqlmodel import select

from bot.demo.world import ALERT_TOKEN
from bot.platform_migrations import catalog, flows, loading, steps
from bot.platform_migrations.models import StepState
from bot.support.models import Ticket

DEMO = Path(str(resources.files("bot.demo")))
PG16 = (DEMO / "migration-pg16.yaml").read_text()
LIAM, MIA, TOM, VERA = "U0APP00001", "U0APP00002", "U0MGR00002", "U0VP000001"
DATA_PEOPLE = ["U0ENG00011", "U0ENG00012", "U0ENG00013", "U0ENG00014"]


# ---- helpers --------------------------------------------------------------------------------


def import_catalog(world, paths=None) -> catalog.ImportResult:
    entities, _notes = catalog.read_entities(paths or [DEMO / "catalog"])
    now = world.clock.now()
    with world.db.session() as session:
        result = catalog.import_catalog(session, entities, now)
        for migration in flows.live_migrations(session):
            flows.request_sync(session, migration.id, now)
    world.tick()
    return result


def load(world, text: str = PG16, **replace: str) -> None:
    for old, new in replace.items():
        text = text.replace(old, new)
    spec = loading.parse_migration_text(text, world.org)
    with world.db.session() as session:
        loading.save_spec(session, spec, world.clock.now())
        flows.request_sync(session, spec.id, world.clock.now())
    world.tick()


def stage(world, migration_id: str, new: str, *, confirmed: bool = False) -> list[str]:
    with world.db.session() as session:
        migration = loading.get_migration(session, migration_id)
        accepted = flows.change_stage(
            session, world.org, migration, new, world.clock.now(), confirmed=confirmed
        )
    world.tick()
    return accepted


def state(world, service: str, step: str, migration_id: str = "pg16-upgrade") -> str:
    with world.db.session() as session:
        return steps.state_of(session, migration_id, service, step).state


def ci(world, migration_id: str, body: Any, token: str | None = ALERT_TOKEN):
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    response = world.http.post(f"/migrations/{migration_id}/progress", json=body, headers=headers)
    world.settle()
    return response


def button(message, action_id: str, service: str | None = None, step: str | None = None):
    for block in message.blocks or []:
        for element in block.get("elements", []):
            if element.get("action_id") != action_id:
                continue
            value = element.get("value", "")
            data = json.loads(value) if value.startswith("{") else {}
            if (service and data.get("s") != service) or (step and data.get("t") != step):
                continue
            return block.get("block_id"), value
    raise AssertionError(f"no {action_id} button for {service}/{step} on {message.text!r}")


def press(world, message, action_id: str, user: str, service=None, step=None):
    block_id, value = button(message, action_id, service, step)
    msg = {"type": "message", "ts": message.ts, "text": message.text, "blocks": message.blocks}
    response = world.slack.action(
        action_id, user, value=value, block_id=block_id, channel=message.channel, message=msg
    )
    world.settle()
    return response


def active_pg16(world) -> None:
    import_catalog(world)
    load(world)
    stage(world, "pg16-upgrade", "pilot")
    stage(world, "pg16-upgrade", "active")


# ---- the file -------------------------------------------------------------------------------


def test_a_file_without_a_reason_for_its_deadline_is_refused_saying_why_it_matters(world):
    text = PG16.replace(
        "deadline_reason: Extended support charges for PostgreSQL 12 start on 2027-04-01\n", ""
    )
    with pytest.raises(loading.MigrationFileError) as raised:
        loading.parse_migration_text(text, world.org, "pg16.yaml")
    message = str(raised.value)
    assert "pg16.yaml" in message and "deadline_reason" in message
    assert "context-free deadline" in message


def test_a_mandated_migration_needs_a_sponsor_and_errors_carry_their_line(world):
    text = PG16.replace("sponsor: U0VP000001\n", "")
    with pytest.raises(loading.MigrationFileError) as raised:
        loading.parse_migration_text(text, world.org, "pg16.yaml")
    assert "sponsor" in str(raised.value)
    text = PG16.replace("after: [driver]", "after: [drop-replica]")
    with pytest.raises(loading.MigrationFileError) as raised:
        loading.parse_migration_text(text, world.org, "pg16.yaml")
    issue = raised.value.issues[0]
    assert issue.line == PG16.splitlines().index("    after: [driver]") + 1
    assert "not an earlier step" in issue.message


# ---- targets, pilot, announcement -----------------------------------------------------------


def test_targets_come_from_tags_minus_exclusions(world):
    import_catalog(world)
    load(world)
    with world.db.session() as session:
        names = [t.service for t in flows.targets(session, "pg16-upgrade")]
    assert names == ["billing-db", "checkout-api", "ledger", "reports-etl", "warehouse"]
    assert world.fake.posts("C0ANNOUNCE1") == []  # a draft tells nobody


def test_the_pilot_tells_only_the_pilot_team_then_activation_tells_everyone(world):
    import_catalog(world)
    load(world)
    stage(world, "pg16-upgrade", "pilot")
    assert world.fake.posts("C0ANNOUNCE1")[0].text.startswith("Pilot:")
    assert world.fake.dms(LIAM) == []
    warehouse = world.fake.dms("U0ENG00011")[-1]
    assert "warehouse" in warehouse.text
    button(warehouse, "migration.done", "warehouse", "driver")  # released with buttons

    stage(world, "pg16-upgrade", "active")
    announcement = world.fake.posts("C0ANNOUNCE1")[-1]
    assert announcement.text.startswith("Migration:")
    body = json.dumps(announcement.blocks)
    assert "Extended support charges" in body  # the deadline comes with its reason
    assert "checkout-team" in body and "checkout-api" in body  # exactly who is affected
    assert world.fake.posts("C0MIGPG1601")[-1].text == announcement.text  # and its channel
    notice = world.fake.dms(LIAM)[-1]
    notice_text = json.dumps(notice.blocks)
    assert "checkout-api" in notice_text and "billing-db" in notice_text
    assert "reports-etl" not in notice_text  # only their own services
    assert "wiki.example.com/pg16/move" in notice_text and "C0MIGPG1601" in notice_text
    button(notice, "migration.done", "checkout-api", "driver")
    button(notice, "migration.exempt", "billing-db", "driver")
    with pytest.raises(AssertionError):
        button(notice, "migration.done", "checkout-api", "switch")  # not released yet
    assert len(world.fake.dms("U0ENG00011")) == 1  # the pilot team is not told twice


def test_activating_without_a_pilot_asks_for_confirmation(world):
    import_catalog(world)
    load(world)
    with pytest.raises(flows.NeedsConfirmation) as raised:
        stage(world, "pg16-upgrade", "active")
    assert "not been piloted" in str(raised.value)
    accepted = stage(world, "pg16-upgrade", "active", confirmed=True)
    assert any("piloted" in w for w in accepted)
    assert world.fake.posts("C0ANNOUNCE1")


def test_activation_warns_when_a_team_would_carry_too_many_migrations_in_a_quarter(world):
    import_catalog(world)
    for n in (1, 2):
        load(
            world,
            **{"id: pg16-upgrade": f"id: other-{n}", "pilot_teams: [data]": "pilot_teams: []"},
        )
        stage(world, f"other-{n}", "active", confirmed=True)
    load(world)
    stage(world, "pg16-upgrade", "pilot")
    with pytest.raises(flows.NeedsConfirmation) as raised:
        stage(world, "pg16-upgrade", "active")
    assert "team data would carry 3 migrations due in 2027Q1" in str(raised.value)
    assert "other-1, other-2" in str(raised.value)


def test_a_new_service_with_the_tag_becomes_a_target_and_its_owner_is_told(world, tmp_path):
    active_pg16(world)
    extra = tmp_path / "more.yaml"
    extra.write_text(
        "apiVersion: backstage.io/v1alpha1\nkind: Component\nmetadata:\n  name: search\n"
        "  tags: [postgres]\nspec: {owner: reports-team}\n"
    )
    import_catalog(world, [DEMO / "catalog", extra])
    with world.db.session() as session:
        assert "search" in [t.service for t in flows.targets(session, "pg16-upgrade")]
    told = world.fake.dms(MIA)[-1]
    assert "search" in json.dumps(told.blocks)
    button(told, "migration.done", "search", "driver")


# ---- the dependency tree --------------------------------------------------------------------


def test_finishing_billing_dbs_switch_releases_checkout_apis_last_step(world):
    active_pg16(world)
    for service in ("billing-db", "checkout-api"):
        assert state(world, service, "driver") == "released"
        assert state(world, service, "switch") == "waiting"
    notice = world.fake.dms(LIAM)[-1]
    press(world, notice, "migration.done", LIAM, "checkout-api", "driver")
    assert state(world, "checkout-api", "switch") == "released"
    released = world.fake.dms(LIAM)[-1]
    assert "Point the service at its PostgreSQL 16 endpoint" in json.dumps(released.blocks)
    assert "wiki.example.com/pg16/switch" in json.dumps(released.blocks)  # its own instructions

    assert (
        ci(
            world, "pg16-upgrade", {"service": "checkout-api", "step": "switch", "state": "done"}
        ).status_code
        == 200
    )
    # checkout-api's own switch is done, but billing-db's switch is not: still waiting.
    assert state(world, "checkout-api", "drop-replica") == "waiting"
    press(world, notice, "migration.done", LIAM, "billing-db", "driver")
    response = ci(
        world, "pg16-upgrade", {"service": "billing-db", "step": "switch", "state": "done"}
    )
    assert "checkout-api/drop-replica" in response.json()["released"]
    assert state(world, "checkout-api", "drop-replica") == "released"
    told = [m for m in world.fake.dms(LIAM) if "drop-replica" in json.dumps(m.blocks or [])]
    assert any("checkout-api" in json.dumps(m.blocks) for m in told)


def test_an_owner_cannot_report_a_step_that_is_not_released(world):
    active_pg16(world)
    response = ci(
        world,
        "pg16-upgrade",
        {"service": "billing-db", "step": "drop-replica", "state": "in_progress"},
    )
    assert response.status_code == 200  # CI may see work start early
    with world.db.session() as session:
        migration = loading.get_migration(session, "pg16-upgrade")
        with pytest.raises(Exception) as raised:
            flows.owner_reports(
                world.runtime, session, migration, "checkout-api", "switch", "done", LIAM
            )
    assert "waits on checkout-api/driver" in str(raised.value)


def test_someone_who_does_not_own_the_service_cannot_report_for_it(world):
    active_pg16(world)
    notice = world.fake.dms(LIAM)[-1]
    press(world, notice, "migration.done", MIA, "checkout-api", "driver")
    assert "Only the owners of checkout-api" in world.last_response()["text"]
    assert state(world, "checkout-api", "driver") == "released"


# ---- progress the platform can see itself ---------------------------------------------------


def test_progress_from_ci_needs_the_token_and_answers_json_errors(world):
    active_pg16(world)
    good = {"service": "warehouse", "step": "driver", "state": "done"}
    assert ci(world, "pg16-upgrade", good, token=None).status_code == 401
    assert ci(world, "pg16-upgrade", good, token="wrong").status_code == 401
    assert ci(world, "nope", good).status_code == 404
    bad = world.http.post(
        "/migrations/pg16-upgrade/progress",
        content=b"{not json",
        headers={"Authorization": f"Bearer {ALERT_TOKEN}"},
    )
    assert bad.status_code == 400 and "JSON" in bad.json()["error"]
    missing = ci(world, "pg16-upgrade", {"service": "warehouse", "state": "done"})
    assert missing.status_code == 400 and missing.json()["field"] == "step"
    unknown = ci(world, "pg16-upgrade", {**good, "service": "wiki"})
    assert unknown.status_code == 400 and "not a target" in unknown.json()["error"]
    wrong_state = ci(world, "pg16-upgrade", {**good, "state": "finished"})
    assert wrong_state.status_code == 400 and "not a state" in wrong_state.json()["error"]
    ok = ci(world, "pg16-upgrade", good)
    assert ok.status_code == 200
    assert ok.json()["state"] == "done" and ok.json()["released"] == ["warehouse/switch"]
    assert state(world, "warehouse", "driver") == "done"


def test_a_tag_that_appears_at_the_next_import_marks_the_step_done(world, tmp_path):
    active_pg16(world)
    ci(world, "pg16-upgrade", {"service": "reports-etl", "step": "driver", "state": "done"})
    assert state(world, "reports-etl", "switch") == "released"
    services = (
        (DEMO / "catalog" / "services.yaml")
        .read_text()
        .replace(
            "  name: reports-etl\n  tags: [postgres]",
            "  name: reports-etl\n  tags: [postgres, pg16]",
        )
    )
    folder = tmp_path / "catalog"
    folder.mkdir()
    (folder / "services.yaml").write_text(services)
    (folder / "teams.yaml").write_text((DEMO / "catalog" / "teams.yaml").read_text())
    import_catalog(world, [folder])
    assert state(world, "reports-etl", "switch") == "done"
    with world.db.session() as session:
        row = steps.state_of(session, "pg16-upgrade", "reports-etl", "switch")
        assert row.source == "catalog"


def test_a_step_done_by_a_check_offers_no_done_button(world):
    active_pg16(world)
    press(world, world.fake.dms(LIAM)[-1], "migration.done", LIAM, "checkout-api", "driver")
    released = world.fake.dms(LIAM)[-1]
    with pytest.raises(AssertionError):
        button(released, "migration.done", "checkout-api", "switch")
    assert "no need to report it" in json.dumps(released.blocks)


# ---- blocked, help, exemptions --------------------------------------------------------------


def test_blocked_asks_why_and_opens_a_support_ticket_in_the_platform_queue(world):
    active_pg16(world)
    notice = world.fake.dms(LIAM)[-1]
    press(world, notice, "migration.blocked", LIAM, "checkout-api", "driver")
    view = world.opened_view()
    assert view["callback_id"] == "migration.blocked"
    world.slack.submit_view(view, LIAM, {"reason": {"value": ""}})
    assert world.last_ack()["errors"]["reason"]
    world.slack.submit_view(
        view, LIAM, {"reason": {"value": "The new driver breaks our <ORM> pooling"}}
    )
    world.settle()
    assert state(world, "checkout-api", "driver") == "blocked"
    with world.db.session() as session:
        ticket = session.exec(select(Ticket)).one()
        row = steps.state_of(session, "pg16-upgrade", "checkout-api", "driver")
    assert ticket.queue_id == "infra-help" and ticket.requester == LIAM
    assert "checkout-api" in ticket.summary and "ORM" in ticket.details
    assert row.ticket_id == ticket.id and row.reason.startswith("The new driver")
    assert f"#{ticket.id}" in world.fake.dms(LIAM)[-1].text


def test_need_help_posts_to_the_migration_channel(world):
    active_pg16(world)
    press(world, world.fake.dms(MIA)[-1], "migration.help", MIA, "reports-etl", "driver")
    world.slack.submit_view(world.opened_view(), MIA, {"reason": {"value": "Which <driver>?"}})
    world.settle()
    asked = world.fake.posts("C0MIGPG1601")[-1]
    assert f"<@{MIA}> needs help" in asked.text and "reports-etl" in asked.text
    assert "Which &lt;driver&gt;?" in asked.text


def test_an_approved_exemption_counts_as_done_until_it_expires(world):
    active_pg16(world)
    press(world, world.fake.dms(MIA)[-1], "migration.exempt", MIA, "reports-etl", "driver")
    view = world.opened_view()
    until = (world.clock.now() + timedelta(days=60)).date()
    world.slack.submit_view(
        view,
        MIA,
        {
            "reason": {"value": "Retired next month"},
            "until": {"value": {"type": "datepicker", "selected_date": until.isoformat()}},
        },
    )
    world.settle()
    request = world.fake.dms(VERA)[-1]  # the sponsor decides
    assert "Retired next month" in request.text or "Retired next month" in json.dumps(
        request.blocks
    )
    press(world, request, "migration.exempt_approve", MIA)  # not the sponsor: refused
    assert "Only the migration's sponsor" in world.last_response()["text"]
    press(world, request, "migration.exempt_approve", VERA)
    assert state(world, "reports-etl", "driver") == "exempt"
    assert state(world, "reports-etl", "switch") == "released"  # exempt counts as done
    assert "approved your exemption" in world.fake.dms(MIA)[-1].text
    with world.db.session() as session:
        migration = loading.get_migration(session, "pg16-upgrade")
        expired = steps.expire_exemptions(
            session, migration, until + timedelta(days=1), world.clock.now()
        )
    assert [(r.service, r.step) for r in expired] == [("reports-etl", "driver")]
    assert state(world, "reports-etl", "driver") == "released"


def test_the_long_tail_begins_at_80_percent_and_done_at_100(world):
    active_pg16(world)
    services = ["billing-db", "checkout-api", "ledger", "reports-etl", "warehouse"]
    for service in services[:4]:
        for step in ("driver", "switch", "drop-replica"):
            if service == "checkout-api" and step == "drop-replica":
                continue
            ci(world, "pg16-upgrade", {"service": service, "step": step, "state": "done"})
    ci(world, "pg16-upgrade", {"service": "checkout-api", "step": "drop-replica", "state": "done"})
    with world.db.session() as session:
        assert loading.get_migration(session, "pg16-upgrade").stage == "long_tail"
    assert "long tail begins" in world.fake.posts("C0ANNOUNCE1")[-1].text
    for step in ("driver", "switch", "drop-replica"):
        ci(world, "pg16-upgrade", {"service": "warehouse", "step": step, "state": "done"})
    with world.db.session() as session:
        assert loading.get_migration(session, "pg16-upgrade").stage == "done"
        assert session.exec(select(StepState).where(StepState.state != "done")).all() == []
    assert "is complete" in world.fake.posts("C0ANNOUNCE1")[-1].text
