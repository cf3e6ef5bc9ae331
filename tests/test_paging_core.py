"""Paging's pure parts: webhook parsing, routing, the escalation state machine, load levels."""

from __future__ import annotations

from datetime import timedelta

import pytest

from bot.config import check_org_text, parse_org
from bot.demo.story import sample_org_text
from bot.errors import Conflict, UnknownPolicy
from bot.paging import alerts as alerts_mod
from bot.paging.alerts import AlertPayloadError, NoRoute, parse, parse_json, route
from bot.paging.escalation import (
    ACKNOWLEDGE,
    ACKNOWLEDGED,
    ESCALATE,
    RESOLVE,
    RESOLVED,
    TRIGGERED,
    PolicySnapshot,
    Position,
    allowed_from,
    next_position,
    next_status,
    resolve_policy,
)
from bot.paging.load import HEALTHY, STRAINED, UNSUSTAINABLE, level
from tests.paging_samples import alertmanager_alert, alertmanager_body, grafana_body

# ---- webhook bodies ---------------------------------------------------------------------------


def test_alertmanager_v4_body_is_read_alert_by_alert():
    body = alertmanager_body(
        alertmanager_alert(),
        alertmanager_alert("NodeFilesystemSpaceFillingUp", fingerprint="ff01", status="resolved"),
    )
    first, second = parse("alertmanager", body)
    assert first.status == "firing" and second.status == "resolved"
    assert first.fingerprint == "c3b1f4a9e2d01a77"
    assert first.dedup_key == "alertmanager:c3b1f4a9e2d01a77"
    assert first.summary == "Pod payments/api-7d9 is crash looping"
    assert first.details.startswith("Pod payments/api-7d9 restarted")
    assert first.name == "KubePodCrashLooping"
    assert first.labels["team"] == "infra"
    assert first.starts_at is not None and first.starts_at.year == 2026
    assert first.generator_url.startswith("http://prometheus")


def test_alert_without_summary_is_named_by_its_alertname():
    (alert,) = parse("alertmanager", alertmanager_body(alertmanager_alert(summary=None)))
    assert alert.summary == "KubePodCrashLooping"


def test_alert_without_fingerprint_gets_a_stable_one_from_its_labels():
    one = parse("alertmanager", alertmanager_body(alertmanager_alert(fingerprint=None)))[0]
    two = parse("alertmanager", alertmanager_body(alertmanager_alert(fingerprint=None)))[0]
    other = parse(
        "alertmanager", alertmanager_body(alertmanager_alert(fingerprint=None, labels={"pod": "x"}))
    )[0]
    assert one.fingerprint == two.fingerprint != other.fingerprint


def test_runbook_url_annotation_is_kept():
    raw = alertmanager_alert()
    raw["annotations"]["runbook_url"] = "https://runbooks.example.com/crashloop"
    (alert,) = parse("alertmanager", alertmanager_body(raw))
    assert alert.runbook_url == "https://runbooks.example.com/crashloop"


def test_grafana_alerting_body_is_read():
    (alert,) = parse("grafana", grafana_body())
    assert alert.source == "grafana"
    assert alert.summary == "Checkout ingress 5xx rate is 12%"
    assert alert.labels["service"] == "checkout"
    assert alert.dedup_key == "grafana:57c6d9296de2ad39"


def test_generic_alert_single_and_list():
    (one,) = parse("generic", {"summary": "Backups failed", "labels": {"team": "infra"}})
    assert one.status == "firing" and one.summary == "Backups failed"
    many = parse(
        "generic",
        {
            "alerts": [
                {"summary": "A", "dedup_key": "a"},
                {"summary": "B", "dedup_key": "b", "status": "resolved"},
            ]
        },
    )
    assert [a.dedup_key for a in many] == ["generic:a", "generic:b"]
    assert many[1].status == "resolved"


@pytest.mark.parametrize(
    ("source", "body", "field"),
    [
        ("alertmanager", {"version": "4"}, "alerts"),
        ("alertmanager", {"alerts": []}, "alerts"),
        ("alertmanager", {"alerts": ["x"]}, "alerts[0]"),
        (
            "alertmanager",
            alertmanager_body(alertmanager_alert(status="burning")),
            "alerts[0].status",
        ),
        ("alertmanager", {"alerts": [{"status": "firing", "labels": "x"}]}, "alerts[0].labels"),
        (
            "alertmanager",
            {"alerts": [{"status": "firing", "labels": {"alertname": ["a"]}}]},
            "alerts[0].labels.alertname",
        ),
        (
            "alertmanager",
            {"alerts": [{"status": "firing", "labels": {"a": "b"}, "startsAt": "yesterday"}]},
            "alerts[0].startsAt",
        ),
        ("grafana", {"alerts": [{"status": "firing", "labels": {}}]}, "alerts[0].labels"),
        ("generic", {"labels": {"team": "infra"}}, "summary"),
        ("generic", {"summary": "x", "status": "open"}, "status"),
        ("generic", {"alerts": [{"summary": "x"}, {"summary": ""}]}, "alerts[1].summary"),
        ("generic", {"summary": "x", "dedup_key": 5}, "dedup_key"),
        ("generic", [1, 2], ""),
    ],
)
def test_a_bad_body_is_refused_naming_the_field(source, body, field):
    with pytest.raises(AlertPayloadError) as caught:
        parse(source, body)
    assert caught.value.field == field


def test_a_body_that_is_not_json_is_refused():
    with pytest.raises(AlertPayloadError, match="not valid JSON"):
        parse_json("generic", b"{summary: oops")


# ---- routes -----------------------------------------------------------------------------------

ROUTED_ORG = """
timezone: America/New_York
teams:
  - {id: infra, name: Infra, channel: C0INFRA0001}
rotations:
  - {id: infra-oncall, team: infra, kind: oncall, members: [U01, U02, U03, U04],
     start: 2026-11-02, handoff: {weekday: mon, time: "10:00"}}
escalation_policies:
  - id: first
    steps: [{notify: "rotation:infra-oncall"}]
  - id: second
    steps: [{notify: "user:U0MGR00001"}]
  - id: fallback
    steps: [{notify: "user:U0MGR00001"}]
alert_routes:
  - match: {team: infra, severity: critical}
    policy: first
  - match: {team: infra}
    policy: second
"""


def _alert(labels):
    return alerts_mod.Alert("generic", "firing", "f", "s", labels=labels, field_path="alerts[3]")


def test_the_first_route_whose_labels_all_match_wins():
    org = parse_org(ROUTED_ORG)
    assert route(org, _alert({"team": "infra", "severity": "critical"})) == "first"
    assert route(org, _alert({"team": "infra", "severity": "warning"})) == "second"


def test_an_alert_no_route_matches_is_refused_without_a_default():
    org = parse_org(ROUTED_ORG)
    with pytest.raises(NoRoute) as caught:
        route(org, _alert({"team": "data"}))
    assert caught.value.field == "alerts[3].labels"
    assert "team=data" in str(caught.value)


def test_an_alert_no_route_matches_goes_to_the_default_policy():
    org = parse_org(ROUTED_ORG + "alert_default_policy: fallback\n")
    assert route(org, _alert({"team": "data"})) == "fallback"


def test_a_generic_alert_may_name_its_policy_but_not_an_unknown_one():
    org = parse_org(ROUTED_ORG)
    alert = alerts_mod.Alert("generic", "firing", "f", "s", policy="second")
    assert route(org, alert) == "second"
    with pytest.raises(UnknownPolicy):
        route(org, alerts_mod.Alert("generic", "firing", "f", "s", policy="nope"))


def test_config_check_rejects_an_unknown_default_policy_and_steps_out_of_order():
    text = ROUTED_ORG.replace(
        '  - id: fallback\n    steps: [{notify: "user:U0MGR00001"}]',
        '  - id: fallback\n    steps: [{notify: "user:U0MGR00001", after: 30m},'
        ' {notify: "user:U0MGR00002", after: 15m}]',
    )
    report = check_org_text(text + "alert_default_policy: nowhere\n")
    messages = {(i.field, i.message.split(":")[0]) for i in report.errors}
    assert ("alert_default_policy", "unknown policy 'nowhere'") in messages
    assert any(f == "escalation_policies[2].steps[1].after" for f, _ in messages)


# ---- the state machine ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("status", "event", "after"),
    [
        (TRIGGERED, ACKNOWLEDGE, ACKNOWLEDGED),
        (TRIGGERED, RESOLVE, RESOLVED),
        (TRIGGERED, ESCALATE, TRIGGERED),
        (ACKNOWLEDGED, RESOLVE, RESOLVED),
        (ACKNOWLEDGED, ESCALATE, TRIGGERED),
    ],
)
def test_allowed_transitions(status, event, after):
    assert next_status(status, event) == after
    assert status in allowed_from(event)


@pytest.mark.parametrize(
    ("status", "event", "reason"),
    [
        (ACKNOWLEDGED, ACKNOWLEDGE, "already acknowledged"),
        (RESOLVED, ACKNOWLEDGE, "already resolved"),
        (RESOLVED, RESOLVE, "already resolved"),
        (RESOLVED, ESCALATE, "already resolved"),
    ],
)
def test_refused_transitions_say_why(status, event, reason):
    with pytest.raises(Conflict, match=reason):
        next_status(status, event)


def _snapshot(repeat=0, afters=(0, 15, 30), repeat_after=None):
    from bot.paging.escalation import Step

    return PolicySnapshot(
        "p",
        tuple(Step("user", f"U0{i}", timedelta(minutes=m)) for i, m in enumerate(afters)),
        repeat,
        repeat_after,
    )


def test_the_chain_runs_through_its_steps_and_repeats():
    policy = _snapshot(repeat=1)
    seen, position = [], None
    while (position := next_position(policy, position)) is not None:
        seen.append((position.cycle, position.step))
    assert seen == [(0, 0), (0, 1), (0, 2), (1, 0), (1, 1), (1, 2)]
    assert next_position(_snapshot(), Position(0, 2)) is None


def test_step_delays_count_from_the_start_of_the_chain():
    policy = _snapshot(repeat=1)
    assert policy.delay_before(0, 0) == timedelta(0)
    assert policy.delay_before(0, 1) == timedelta(minutes=15)
    assert policy.delay_before(0, 2) == timedelta(minutes=15)
    # The last step gets as long as the one before it had, then the chain runs again.
    assert policy.delay_before(1, 0) == timedelta(minutes=15)


def test_repeat_after_overrides_the_last_steps_window():
    assert _snapshot(repeat=2, repeat_after=timedelta(minutes=5)).delay_before(1, 0) == timedelta(
        minutes=5
    )
    assert _snapshot(repeat=1, afters=(0,)).last_step_window() == timedelta(minutes=15)


def test_the_policy_snapshot_survives_a_round_trip_through_json():
    policy = _snapshot(repeat=1, repeat_after=timedelta(minutes=20))
    assert PolicySnapshot.from_json(policy.to_json()) == policy


def test_a_rotation_pages_through_itself_then_its_secondary():
    org = parse_org(sample_org_text())
    policy = resolve_policy(org, "rotation:data-oncall")
    assert [s.notify for s in policy.steps] == ["rotation:data-oncall", "rotation:infra-oncall"]
    assert policy.steps[1].after == timedelta(minutes=15)
    configured = resolve_policy(org, "infra-default")
    assert configured.repeat == 1 and configured.first_rotation == "infra-oncall"


# ---- load levels (the book's numbers) ---------------------------------------------------------


@pytest.mark.parametrize(
    ("per_week", "expected"),
    [
        (0, HEALTHY),
        (1.9, HEALTHY),
        (2, STRAINED),
        (5, STRAINED),
        (5.1, UNSUSTAINABLE),
        (12, UNSUSTAINABLE),
    ],
)
def test_pages_per_week_levels(per_week, expected):
    assert level(per_week) == expected
