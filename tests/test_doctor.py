"""`opsbot doctor` against the fake Slack: one line per finding with its fix, and a non-zero exit
on any problem, for each kind of failure."""

from __future__ import annotations

import pytest

from bot.cli import main
from bot.db import Database
from bot.doctor import check

ORG = """\
timezone: America/New_York
teams:
  - {id: infra, name: Infrastructure, channel: C0INFRA0001, members: [U0ENG00001, carla@example.com]}
rotations:
  - id: infra-oncall
    team: infra
    kind: oncall
    members: [U0ENG00001, U0ENG00002, U0ENG00003, U0ENG00004, U0ENG00005, U0ENG00006]
    start: 2026-11-02
    handoff: {weekday: mon, time: "10:00"}
    usergroup: S0INFRAONC
escalation_policies:
  - id: infra-default
    steps:
      - {notify: "rotation:infra-oncall", after: 0m}
      - {notify: "user:quinn@example.com", after: 30m}
support:
  queues:
    - {id: infra-help, team: infra, channels: [C0HELP00001], t1: infra-oncall, t2: infra-oncall}
"""


@pytest.fixture
def doctor_world(world_factory):
    world = world_factory(org_yaml=ORG)
    world.fake.add_user("U0ENG00003", "carla", "carla@example.com")
    world.fake.add_user("U0MGR00009", "quinn", "quinn@example.com")
    world.fake.add_user("U0ENG00006", "frank", "frank@example.com")
    world.fake.existing_usergroups.add("S0INFRAONC")
    return world


def lines(world) -> list[str]:
    return [str(f) for f in check(world.org, world.runtime.slack, world.db)]


def problems(world) -> list[str]:
    return [line for line in lines(world) if line.startswith("FAIL")]


def test_a_healthy_set_up_passes_every_check(doctor_world):
    found = lines(doctor_world)
    assert all(line.startswith("ok   ") for line in found), found
    assert [line.split(":")[0] for line in found] == [
        "ok   slack",
        "ok   scopes",
        "ok   channels",
        "ok   usergroups",
        "ok   people",
        "ok   database",
    ]
    assert "bot @opsbot (U0OPSBOT01)" in found[0]
    assert found[2] == "ok   channels: the bot is a member of all 2 channel(s)"
    assert found[4] == ("ok   people: all 2 e-mail address(es) and 6 Slack id(s) are active users")


def test_a_bad_token_fails_auth_and_skips_the_other_slack_checks(doctor_world):
    doctor_world.fake.fail("auth.test", error="invalid_auth")
    found = lines(doctor_world)
    assert found[0].startswith(
        "FAIL slack: auth.test failed: invalid_auth\n     fix: set SLACK_BOT_TOKEN"
    )
    assert [line.split(":")[0] for line in found] == ["FAIL slack", "ok   database"]


def test_missing_scopes_are_named_with_how_to_grant_them(doctor_world):
    doctor_world.fake.scopes = [
        s for s in doctor_world.fake.granted_scopes() if s not in ("users:read.email", "commands")
    ]
    (problem,) = problems(doctor_world)
    assert problem.startswith(
        "FAIL scopes: the token lacks 2 scope(s) the manifest asks for: commands, users:read.email"
    )
    assert "reinstall the app" in problem


def test_a_channel_the_bot_is_not_in_says_where_it_is_configured_and_how_to_invite(doctor_world):
    doctor_world.fake.channels["C0HELP00001"] = {"name": "help-infra", "is_member": False}
    (problem,) = problems(doctor_world)
    assert problem == (
        "FAIL channels: the bot is not a member of #help-infra C0HELP00001 "
        "(support.queues[0].channels)\n     fix: invite it: type `/invite @opsbot` in #help-infra"
    )


def test_a_channel_that_does_not_exist_or_is_archived_is_a_problem(doctor_world):
    doctor_world.fake.channels["C0INFRA0001"] = None
    doctor_world.fake.channels["C0HELP00001"] = {"name": "old-help", "is_archived": True}
    found = problems(doctor_world)
    assert found[0].startswith("FAIL channels: C0INFRA0001 (teams[0].channel): channel_not_found")
    assert found[1].startswith("FAIL channels: #old-help C0HELP00001 (support.queues[0].channels)")
    assert "is archived" in found[1]


def test_a_user_group_that_does_not_exist_is_a_problem(doctor_world):
    doctor_world.fake.existing_usergroups.clear()
    (problem,) = problems(doctor_world)
    assert problem.startswith(
        "FAIL usergroups: user group S0INFRAONC (rotations[0].usergroup) does not exist"
    )


def test_every_email_must_resolve_to_a_slack_user(doctor_world):
    del doctor_world.fake.users["U0MGR00009"]
    (problem,) = problems(doctor_world)
    assert problem == (
        "FAIL people: quinn@example.com (escalation_policies[0].steps[1].notify): users_not_found"
        "\n     fix: correct the address, or name the person by Slack id (U...)"
    )


def test_a_mistyped_or_deactivated_slack_id_is_a_problem_before_anyone_is_paged(doctor_world):
    del doctor_world.fake.users["U0ENG00006"]  # a typo, or someone who left
    doctor_world.fake.users["U0ENG00005"]["deleted"] = True
    found = problems(doctor_world)
    assert found == [
        "FAIL people: U0ENG00005 (Erin Walsh, rotations[0].members) is deactivated"
        "\n     fix: replace them with someone active",
        "FAIL people: U0ENG00006 (rotations[0].members): user_not_found"
        "\n     fix: correct the id (in Slack: the person's profile, ⋮, Copy member ID)",
    ]


def test_a_database_behind_the_newest_revision_asks_for_an_upgrade(doctor_world, tmp_path):
    empty = Database(f"sqlite:///{tmp_path / 'empty.db'}")
    try:
        found = [str(f) for f in check(doctor_world.org, doctor_world.runtime.slack, empty)]
    finally:
        empty.dispose()
    assert found[-1].startswith("FAIL database: the database has no schema yet")
    assert found[-1].endswith("fix: run `opsbot db upgrade`")


def test_an_unreachable_database_is_one_line_with_its_fix(doctor_world, tmp_path):
    gone = Database(f"sqlite:///{tmp_path / 'no-such-dir' / 'x.db'}")
    try:
        finding = check(doctor_world.org, doctor_world.runtime.slack, gone)[-1]
    finally:
        gone.dispose()
    assert not finding.ok
    assert finding.message.startswith("the database does not answer: unable to open database file")
    assert finding.fix == "check DATABASE_URL and that the server is up and reachable"


def test_the_command_prints_each_finding_and_exits_1_on_a_problem(
    doctor_world, monkeypatch, tmp_path, capsys
):
    config = tmp_path / "opsbot.yaml"
    config.write_text(ORG)
    monkeypatch.setenv("OPSBOT_CONFIG", str(config))
    monkeypatch.setenv("SLACK_BOT_TOKEN", "xoxb-real-looking")
    monkeypatch.setenv("SLACK_API_URL", doctor_world.fake.api_url)
    monkeypatch.setenv("DATABASE_URL", doctor_world.settings.database_url)
    assert main(["doctor"]) == 0
    assert capsys.readouterr().out.endswith(
        f"ok   database: the schema is at the newest revision ({_head()})\nall checks passed\n"
    )
    doctor_world.fake.channels["C0INFRA0001"] = {"is_member": False}
    assert main(["doctor"]) == 1
    out = capsys.readouterr().out
    assert "FAIL channels: the bot is not a member of #c0infra0001 C0INFRA0001" in out
    assert out.endswith("1 problem(s) found\n")


def test_the_command_needs_the_bot_token(monkeypatch, capsys):
    monkeypatch.delenv("SLACK_BOT_TOKEN", raising=False)
    assert main(["doctor"]) == 2
    assert "missing environment variable(s): SLACK_BOT_TOKEN" in capsys.readouterr().err


def _head() -> str:
    from bot.db import schema_status

    return schema_status(Database("sqlite://")).head


def test_a_webhook_whose_secret_is_not_in_the_environment_is_a_problem(world_factory, monkeypatch):
    org = ORG.replace(
        '      - {notify: "user:quinn@example.com", after: 30m}\n',
        '      - {notify: "user:quinn@example.com", after: 30m}\n'
        '      - {notify: "webhook:pagerduty-infra", after: 40m}\n',
    ) + (
        "webhooks:\n"
        "  - {id: pagerduty-infra, format: pagerduty, routing_key_env: OPSBOT_TEST_PD_KEY}\n"
    )
    world = world_factory(org_yaml=org)
    world.fake.add_user("U0ENG00003", "carla", "carla@example.com")
    world.fake.add_user("U0MGR00009", "quinn", "quinn@example.com")
    world.fake.add_user("U0ENG00006", "frank", "frank@example.com")
    world.fake.existing_usergroups.add("S0INFRAONC")
    monkeypatch.delenv("OPSBOT_TEST_PD_KEY", raising=False)
    (problem,) = problems(world)
    assert problem == (
        "FAIL webhooks: webhook pagerduty-infra: OPSBOT_TEST_PD_KEY (routing_key_env) is not set "
        "in this environment\n     fix: set OPSBOT_TEST_PD_KEY where opsbot runs (the secret "
        "stays out of the config file)"
    )
    monkeypatch.setenv("OPSBOT_TEST_PD_KEY", "R0UT1NGKEY")
    assert "ok   webhooks: the secrets of all 1 webhook(s) are set" in lines(world)
