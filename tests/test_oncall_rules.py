"""`opsbot config check` keeps on-call sustainable: 1 week in 4 at most, ideally 1 in 6."""

from __future__ import annotations

import pytest

from bot.cli import main
from bot.config import ConfigReport, check_org_text
from handlers import org_checks

ORG = """\
timezone: America/New_York
teams:
  - {{id: infra, name: Infrastructure, channel: C0INFRA0001}}
rotations:
  - id: infra-oncall
    team: infra
    kind: {kind}
    members: [{members}]
    start: {start}
    handoff: {{weekday: mon, time: "10:00"}}
    length: 1w
"""


def org(members: str, kind: str = "oncall", start: str = "2026-11-02") -> str:
    return ORG.format(members=members, kind=kind, start=start)


def check(text: str) -> ConfigReport:
    """What `opsbot config check` reports: the core checks plus every capability's."""
    return check_org_text(text, checks=org_checks())


SIX = "U0A01, U0A02, U0A03, U0A04, U0A05, U0A06"


@pytest.mark.parametrize(
    ("members", "errors", "warnings"),
    [
        ("U0A01, U0A02, U0A03", ["puts U0A03 on call 1 week in 3 (33% of the time)"], []),
        ("U0A01, U0A02, U0A03, U0A04", [], ["puts U0A04 on call 1 week in 4 (25% of the time)"]),
        ("U0A01, U0A02, U0A03, U0A04, U0A05", [], ["1 week in 5 (20% of the time)"]),
        (SIX, [], []),
        # Listed twice in seven: on call 2 weeks in 7 (29%), more than 1 in 4.
        (SIX + ", U0A01", ["puts U0A01 on call 2 weeks in 7 (29% of the time)"], []),
    ],
)
def test_on_call_load_limits(members, errors, warnings):
    report = check(org(members))
    assert [i.message.split(";")[0] for i in report.errors] == errors
    assert [w for w in warnings if not any(w in i.message for i in report.warnings)] == []
    assert len(report.warnings) == len(warnings)
    for issue in report.issues:
        assert issue.field == "rotations[0].members" and issue.line == 8


def test_support_rotations_are_business_hours_and_not_limited():
    assert check(org("U0A01, U0A02", kind="support")).issues == []


def test_start_off_the_handoff_weekday_is_an_error_on_its_line():
    report = check(org(SIX, start="2026-11-03"))
    assert [str(i) for i in report.errors] == [
        "opsbot.yaml:9 rotations[0].start: start 2026-11-03 is a tue, but handoffs are on mon: "
        "make start the date of the first handoff"
    ]


def test_config_check_fails_an_unsustainable_rotation(tmp_path, capsys):
    path = tmp_path / "opsbot.yaml"
    path.write_text(org("U0A01, U0A02"))
    assert main(["config", "check", str(path)]) == 1
    assert "nobody should be on call more than 1 week in 4" in capsys.readouterr().err
