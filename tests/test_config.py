"""The org config: the example is valid, and every mistake is reported with file, line and field."""

from __future__ import annotations

from datetime import date, time, timedelta
from pathlib import Path
from types import UnionType
from typing import Annotated, Union, get_args, get_origin

import pytest
import yaml
from pydantic import BaseModel

from bot.cli import main
from bot.config import (
    ConfigError,
    OrgConfig,
    check_org_file,
    check_org_text,
    load_org,
    parse_org,
)
from bot.errors import UnknownPolicy, UnknownQueue, UnknownRotation, UnknownTeam
from handlers import check_config
from tests.harness import SHARED

EXAMPLE = SHARED / "opsbot.example.yaml"  # the contract, when ../shared is present
# The repository's own example: every key opsbot reads, with what it means.
REPO_EXAMPLE = Path(__file__).resolve().parents[1] / "opsbot.example.yaml"

# A small, complete org; tests break one line of it at a time.
ORG = """\
timezone: America/New_York
business_hours: {days: [mon, tue, wed, thu, fri], start: "09:00", end: "17:00"}
holidays: [2026-12-25]
teams:
  - id: platform
    name: Platform
  - id: infra
    name: Infrastructure
    parent: platform
    channel: C0INFRA0001
    timezone: Europe/London
    members: [U0ENG00001, bob@example.com]
rotations:
  - id: infra-oncall
    team: infra
    kind: oncall
    # Six people: on call 1 week in 6, within the sustainability rules.
    members: [U0ENG00001, U0ENG00002, U0ENG00003, U0ENG00004, U0ENG00005, U0ENG00006]
    start: 2026-11-02
    handoff: {weekday: mon, time: "10:00"}
    length: 1w
    secondary: infra-support
    reminders: [1d, 1h]
  - id: infra-support
    team: infra
    kind: support
    members: [U0ENG00002, U0ENG00001]
    start: 2026-11-02
    handoff:
      weekday: monday
      time: "09:00"
escalation_policies:
  - id: infra-default
    steps:
      - {notify: "rotation:infra-oncall", after: 0m}
      - {notify: "user:U0MGR00001", after: 30m}
alert_routes:
  - match: {team: infra}
    policy: infra-default
applications:
  - {id: checkout, name: Checkout, tier: 0, owner_team: infra}
support:
  queues:
    - id: infra-help
      team: infra
      channels: [C0HELP00001]
      t1: infra-support
      t2: infra-oncall
      critical_policy: infra-default
"""


def line_of(text: str, needle: str) -> int:
    """The 1-based line of the only line containing `needle` (so tests check the real line)."""
    found = [n for n, line in enumerate(text.splitlines(), 1) if needle in line]
    assert len(found) == 1, f"{needle!r} is on lines {found}"
    return found[0]


def broken(old: str, new: str, text: str = ORG) -> str:
    assert text.count(old) == 1, f"{old!r} is not unique in the fixture"
    return text.replace(old, new)


def errors_of(text: str) -> list[str]:
    report = check_org_text(text)
    assert not report.ok
    return [str(issue) for issue in report.errors]


# ---- valid configs -----------------------------------------------------------------------------


@pytest.mark.skipif(not EXAMPLE.exists(), reason="/work/shared is not present")
def test_the_example_config_is_valid():
    report = check_config(EXAMPLE)
    # Its 4- and 5-person on-call rotations are allowed, with the sustainability warning.
    assert report.errors == []
    assert all("aim for at most 1 week in 6" in i.message for i in report.warnings)
    org = report.org
    assert org is not None
    assert [t.id for t in org.teams] == ["platform-org", "infra", "data"]
    assert org.rotation("infra-oncall").handoff.time == time(10, 0)
    assert org.rotation("infra-oncall").reminders == [timedelta(days=1), timedelta(hours=1)]
    assert org.support.sla["critical"].business_hours is False
    assert org.support.queues[0].office_hours is not None
    assert org.wins is not None and org.wins.cadence == timedelta(weeks=2)


def test_the_repositorys_example_config_is_valid_without_warnings():
    report = check_org_file(REPO_EXAMPLE)
    assert [str(i) for i in report.issues] == []
    org = report.org
    assert org is not None and org.wins is not None
    assert org.public_holidays_of("data") == "GB-ENG"
    assert org.platform_migrations.platform_team == "infra"


def _missing_keys(model: type[BaseModel], value: object, where: str) -> set[str]:
    """Keys of `model` (recursively) that `value`, the example's YAML at `where`, never shows."""
    if isinstance(value, list):
        return (
            set.intersection(*(_missing_keys(model, v, where) for v in value)) if value else {where}
        )
    if not isinstance(value, dict):
        return {where}
    missing: set[str] = set()
    for name, field in model.model_fields.items():
        key = field.alias or name
        if key not in value:
            missing.add(f"{where}{key}")
            continue
        missing |= _missing_below(field.annotation, value[key], f"{where}{key}.")
    return missing


def _missing_below(annotation: object, value: object, where: str) -> set[str]:
    origin, args = get_origin(annotation), get_args(annotation)
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return _missing_keys(annotation, value, where)
    if origin in (Union, UnionType):
        found = [_missing_below(a, value, where) for a in args if a is not type(None)]
        return min(found, key=len) if found else set()
    if origin is list and args:  # a key counts when any item shows it
        return _missing_below(args[0], value, where)
    if origin is dict and len(args) == 2 and isinstance(value, dict):
        return _missing_below(args[1], list(value.values()), where)
    if origin is Annotated:
        return _missing_below(args[0], value, where)
    return set()


def test_the_repositorys_example_shows_every_key_opsbot_reads():
    example = yaml.safe_load(REPO_EXAMPLE.read_text(encoding="utf-8"))
    missing = _missing_keys(OrgConfig, example, "")
    assert not missing, f"add these keys, with a comment, to opsbot.example.yaml: {sorted(missing)}"


def test_config_check_prints_ok_for_the_repositorys_example(capsys):
    assert main(["config", "check", str(REPO_EXAMPLE)]) == 0
    assert capsys.readouterr().out == "ok\n"


def test_a_config_built_from_a_yaml_string():
    org = parse_org(ORG)
    assert org.timezone == "America/New_York"
    assert org.holidays == [date(2026, 12, 25)]
    assert org.rotation("infra-support").handoff.weekday == "mon"  # "monday" is accepted
    assert org.rotation("infra-oncall").length == timedelta(weeks=1)
    assert org.policy("infra-default").steps[1].after == timedelta(minutes=30)
    assert org.policy("infra-default").steps[0].target_kind == "rotation"
    assert org.policy("infra-default").steps[0].target_ref == "infra-oncall"
    assert org.team("infra").members == ["U0ENG00001", "bob@example.com"]
    assert org.queue("infra-help").t2 == "infra-oncall"


def test_omitted_sections_take_sane_defaults():
    org = parse_org("timezone: UTC\n")
    assert org.business_hours.days == ["mon", "tue", "wed", "thu", "fri"]
    assert (org.business_hours.start, org.business_hours.end) == (time(9), time(17))
    assert org.support.sla["critical"].first_response == timedelta(minutes=15)
    assert org.teams == [] and org.wins is None


def test_unquoted_times_that_yaml_reads_as_numbers_are_still_times():
    # YAML 1.1 reads 10:00 unquoted as the sexagesimal integer 600.
    org = parse_org(broken('time: "10:00"', "time: 10:00"))
    assert org.rotation("infra-oncall").handoff.time == time(10, 0)


def test_zone_lookups_prefer_the_team_zone_over_the_org_zone():
    org = parse_org(ORG)
    assert str(org.zone("infra")) == "Europe/London"
    assert str(org.zone("platform")) == "America/New_York"
    assert str(org.zone()) == "America/New_York"
    assert str(org.rotation_zone("infra-oncall")) == "Europe/London"


def test_lookups_of_unknown_ids_raise_specific_errors():
    org = parse_org(ORG)
    with pytest.raises(UnknownTeam):
        org.team("nope")
    with pytest.raises(UnknownRotation):
        org.rotation("nope")
    with pytest.raises(UnknownPolicy):
        org.policy("nope")
    with pytest.raises(UnknownQueue):
        org.queue("nope")
    assert org.application("nope") is None


# ---- located errors ------------------------------------------------------------------------------


def test_an_error_names_file_line_and_field_exactly():
    text = broken(
        'handoff: {weekday: mon, time: "10:00"}', 'handoff: {weekday: mondy, time: "10:00"}'
    )
    assert line_of(text, "mondy") == 20
    assert errors_of(text) == [
        "opsbot.yaml:20 rotations[0].handoff.weekday: 'mondy' is not a weekday"
    ]


@pytest.mark.skipif(not EXAMPLE.exists(), reason="/work/shared is not present")
def test_config_check_names_the_real_line_in_a_file(tmp_path):
    text = broken("{weekday: tue,", "{weekday: tues,", EXAMPLE.read_text())
    path = tmp_path / "opsbot.yaml"
    path.write_text(text)
    report = check_org_file(path)
    line = line_of(text, "weekday: tues")
    assert [str(i) for i in report.errors] == [
        f"{path}:{line} rotations[2].handoff.weekday: 'tues' is not a weekday"
    ]


@pytest.mark.parametrize(
    ("old", "new", "field", "message"),
    [
        (
            "length: 1w",
            "length: 1fortnight",
            "rotations[0].length",
            "'1fortnight' is not a duration",
        ),
        ("length: 1w", "length: 36h", "rotations[0].length", "a shift length is a whole number"),
        (
            "after: 30m",
            "after: soon",
            "escalation_policies[0].steps[1].after",
            "'soon' is not a duration",
        ),
        (
            "reminders: [1d, 1h]",
            "reminders: [1d, -1h]",
            "rotations[0].reminders[1]",
            "'-1h' is not a duration",
        ),
        (
            "timezone: Europe/London",
            "timezone: Europe/Lundon",
            "teams[1].timezone",
            "'Europe/Lundon' is not a time zone",
        ),
        (
            "timezone: America/New_York",
            "timezone: EST5EDT-ish",
            "timezone",
            "'EST5EDT-ish' is not a time zone",
        ),
        (
            'time: "10:00"',
            'time: "25:00"',
            "rotations[0].handoff.time",
            "'25:00' is not a time of day (HH:MM)",
        ),
        ('time: "09:00"', 'time: "9am"', "rotations[1].handoff.time", "'9am' is not a time of day"),
        (
            'start: "09:00", end: "17:00"',
            'start: "17:00", end: "09:00"',
            "business_hours.end",
            "end must be later than start",
        ),
        (
            "days: [mon, tue,",
            "days: [mon, tues,",
            "business_hours.days[1]",
            "'tues' is not a weekday",
        ),
        (
            "kind: support",
            "kind: suport",
            "rotations[1].kind",
            "'suport' is not one of: 'oncall' or 'support'",
        ),
        (
            "channel: C0INFRA0001",
            'channel: "#infra"',
            "teams[1].channel",
            "'#infra' is not a Slack channel id",
        ),
        (
            "members: [U0ENG00001, bob@example.com]",
            "members: [U0ENG00001, bob]",
            "teams[1].members[1]",
            "'bob' is neither a Slack user id",
        ),
        (
            '"user:U0MGR00001"',
            '"team:infra"',
            "escalation_policies[0].steps[1].notify",
            "'team:infra' is not a target",
        ),
        ("tier: 0", "tier: 7", "applications[0].tier", "less than or equal to 3"),
        ("holidays: [2026-12-25]", "holidays: [christmas]", "holidays[0]", "valid date"),
    ],
)
def test_bad_values_are_reported_at_their_line(old, new, field, message):
    text = broken(old, new)
    line = line_of(text, new)
    errors = errors_of(text)
    assert len(errors) == 1, errors
    assert errors[0].startswith(f"opsbot.yaml:{line} {field}: ")
    assert message in errors[0]


def test_an_unknown_key_is_an_error():
    text = broken("    kind: support\n", "    kind: support\n    rotaion_length: 2w\n")
    line = line_of(text, "rotaion_length")
    assert errors_of(text) == [
        f"opsbot.yaml:{line} rotations[1].rotaion_length: unknown key 'rotaion_length'"
    ]


def test_an_unknown_top_level_key_is_an_error():
    assert errors_of(ORG + "oncall: {}\n") == [
        f"opsbot.yaml:{line_of(ORG + 'oncall: {}', 'oncall: {}')} oncall: unknown key 'oncall'"
    ]


def test_a_missing_key_is_reported_at_the_item_that_lacks_it():
    text = broken('    handoff: {weekday: mon, time: "10:00"}\n', "")
    line = line_of(text, "- id: infra-oncall")
    assert errors_of(text) == [f"opsbot.yaml:{line} rotations[0].handoff: is required"]


def test_a_missing_key_inside_a_nested_mapping():
    text = broken('      time: "09:00"\n', "")
    line = text.splitlines().index("    handoff:") + 1
    assert errors_of(text) == [f"opsbot.yaml:{line} rotations[1].handoff.time: is required"]


@pytest.mark.parametrize(
    ("old", "new", "field", "message"),
    [
        (
            "secondary: infra-support",
            "secondary: data-oncall",
            "rotations[0].secondary",
            "unknown rotation 'data-oncall'",
        ),
        (
            "secondary: infra-support",
            "secondary: infra-oncall",
            "rotations[0].secondary",
            "a rotation cannot be its own secondary",
        ),
        (
            "    team: infra\n    kind: oncall",
            "    team: infrastructure\n    kind: oncall",
            "rotations[0].team",
            "unknown team 'infrastructure'",
        ),
        (
            '"rotation:infra-oncall"',
            '"rotation:infra-on-call"',
            "escalation_policies[0].steps[0].notify",
            "unknown rotation 'infra-on-call'",
        ),
        (
            "    policy: infra-default",
            "    policy: infra-defualt",
            "alert_routes[0].policy",
            "unknown policy 'infra-defualt'",
        ),
        (
            "t1: infra-support",
            "t1: infra-helpers",
            "support.queues[0].t1",
            "unknown rotation 'infra-helpers'",
        ),
        ("t2: infra-oncall", "t2: oncall", "support.queues[0].t2", "unknown rotation 'oncall'"),
        (
            "critical_policy: infra-default",
            "critical_policy: page-everyone",
            "support.queues[0].critical_policy",
            "unknown policy 'page-everyone'",
        ),
        (
            "      team: infra\n      channels",
            "      team: help\n      channels",
            "support.queues[0].team",
            "unknown team 'help'",
        ),
        (
            "owner_team: infra}",
            "owner_team: payments}",
            "applications[0].owner_team",
            "unknown team 'payments'",
        ),
        ("parent: platform", "parent: platfrom", "teams[1].parent", "unknown team 'platfrom'"),
    ],
)
def test_unknown_references_are_errors(old, new, field, message):
    text = broken(old, new)
    line = line_of(text, new.strip().splitlines()[0])
    assert errors_of(text) == [f"opsbot.yaml:{line} {field}: {message}"]


def test_a_team_cannot_be_its_own_parent():
    text = broken("parent: platform", "parent: infra")
    assert errors_of(text) == [
        f"opsbot.yaml:{line_of(text, 'parent: infra')} teams[1].parent: a team cannot be its own parent"
    ]


@pytest.mark.parametrize(
    ("section", "old", "new", "field"),
    [
        ("teams", "rotations:\n", "  - {id: infra, name: Again}\nrotations:\n", "teams[2].id"),
        (
            "rotations",
            "escalation_policies:\n",
            '  - {id: infra-support, team: infra, kind: support, members: [U0ENG00001], start: 2026-11-02, handoff: {weekday: mon, time: "09:00"}}\nescalation_policies:\n',
            "rotations[2].id",
        ),
        (
            "escalation_policies",
            "alert_routes:\n",
            '  - {id: infra-default, steps: [{notify: "user:U0MGR00001"}]}\nalert_routes:\n',
            "escalation_policies[1].id",
        ),
        (
            "applications",
            "support:\n",
            "  - {id: checkout, name: Again, tier: 1, owner_team: infra}\nsupport:\n",
            "applications[1].id",
        ),
        (
            "queues",
            "",
            "    - {id: infra-help, team: infra, channels: [C0HELP00002], t1: infra-support}\n",
            "support.queues[1].id",
        ),
    ],
)
def test_duplicate_ids_are_errors(section, old, new, field):
    text = broken(old, new) if old else ORG + new
    duplicate = new.strip().splitlines()[0]
    errors = errors_of(text)
    assert len(errors) == 1, errors
    assert errors[0].startswith(f"opsbot.yaml:{line_of(text, duplicate)} {field}: ")
    assert errors[0].endswith("is defined twice")


def test_a_key_given_twice_in_one_mapping_is_an_error():
    # PyYAML would silently keep the last one; the first would be ignored without a word.
    text = broken("    length: 1w\n", "    length: 1w\n    length: 2w\n")
    assert errors_of(text) == [
        f"opsbot.yaml:{line_of(text, 'length: 2w')} rotations[0].length: key 'length' is given twice"
    ]


def test_every_error_is_reported_not_only_the_first():
    text = broken("tier: 0", "tier: 9")
    text = broken('time: "10:00"', 'time: "10:99"', text)
    errors = errors_of(text)
    assert len(errors) == 2
    assert any("applications[0].tier" in e for e in errors)
    assert any("rotations[0].handoff.time" in e for e in errors)


def test_invalid_yaml_is_reported_with_its_line():
    text = broken("    name: Infrastructure\n", "    name: Infrastructure\n\tparent: x\n")
    line = line_of(text, "\tparent")
    errors = errors_of(text)
    assert len(errors) == 1
    assert errors[0].startswith(f"opsbot.yaml:{line} not valid YAML: ")
    assert "'\\t'" in errors[0]


def test_a_top_level_list_is_not_a_config():
    assert errors_of("- a\n- b\n") == ["opsbot.yaml:1 the top level must be a mapping"]


def test_a_missing_file_is_reported_by_name(tmp_path):
    missing = tmp_path / "nope.yaml"
    report = check_org_file(missing)
    assert not report.ok
    assert [str(i) for i in report.errors] == [f"{missing} cannot read: No such file or directory"]


def test_load_and_parse_raise_config_error_with_every_issue(tmp_path):
    text = broken("tier: 0", "tier: 9")
    with pytest.raises(ConfigError) as raised:
        parse_org(text, "org.yaml")
    assert str(raised.value).startswith(f"org.yaml:{line_of(text, 'tier: 9')} applications[0].tier")
    path = tmp_path / "opsbot.yaml"
    path.write_text(text)
    with pytest.raises(ConfigError):
        load_org(path)
    path.write_text(ORG)
    assert load_org(path).team("infra").name == "Infrastructure"


# ---- opsbot config check -------------------------------------------------------------------------


@pytest.mark.skipif(not EXAMPLE.exists(), reason="/work/shared is not present")
def test_config_check_prints_ok_for_the_example(capsys):
    assert main(["config", "check", str(EXAMPLE)]) == 0
    captured = capsys.readouterr()
    assert captured.out.endswith("ok\n")  # after any warnings
    assert captured.err == ""


def test_config_check_prints_errors_and_exits_1(tmp_path, capsys):
    path = tmp_path / "opsbot.yaml"
    text = broken('{weekday: mon, time: "10:00"}', '{weekday: mondy, time: "10:00"}')
    path.write_text(text)
    assert main(["config", "check", str(path)]) == 1
    captured = capsys.readouterr()
    assert captured.out == ""
    assert captured.err == f"{path}:20 rotations[0].handoff.weekday: 'mondy' is not a weekday\n"


def test_config_check_reads_opsbot_config_when_no_path_is_given(tmp_path, capsys, monkeypatch):
    path = tmp_path / "org.yaml"
    path.write_text(ORG)
    monkeypatch.setenv("OPSBOT_CONFIG", str(path))
    assert main(["config", "check"]) == 0
    assert capsys.readouterr().out == "ok\n"


def test_config_check_of_a_missing_file_exits_1(tmp_path, capsys):
    missing = Path(tmp_path) / "absent.yaml"
    assert main(["config", "check", str(missing)]) == 1
    assert "absent.yaml cannot read" in capsys.readouterr().err


@pytest.mark.parametrize("broken_text", ["a: [1, 2\n", "a: b\n\tc: d\n", "a: 'x\n", "- a\nb: c\n"])
def test_yaml_errors_read_the_same_whichever_parser_pyyaml_has(broken_text):
    """The fast (libyaml) parser's errors are replaced by the reference parser's own."""
    with pytest.raises(yaml.YAMLError) as reference:
        yaml.compose(broken_text, Loader=yaml.SafeLoader)
    (issue,) = check_org_text(broken_text).issues
    mark = reference.value.problem_mark
    assert issue.line == mark.line + 1
    assert issue.message == f"not valid YAML: {reference.value.problem}"


def test_the_config_is_read_once_and_gives_what_safe_load_gives():
    from tests.bench.scale_org import scale_org_text

    text = EXAMPLE.read_text() if EXAMPLE.exists() else REPO_EXAMPLE.read_text()
    for sample in (text, scale_org_text(20)):
        report = check_org_text(sample)
        assert report.org == OrgConfig.model_validate(yaml.safe_load(sample))


def test_rotation_lookup_follows_copies_with_other_rotations(sample_org):
    assert sample_org.rotation("data-oncall").id == "data-oncall"
    fewer = sample_org.model_copy(update={"rotations": sample_org.rotations[:1]})
    with pytest.raises(UnknownRotation):
        fewer.rotation("data-oncall")
    assert sample_org.rotation("data-oncall").id == "data-oncall"
