"""Alert webhooks read into one shape (Alertmanager v4, Grafana alerting, generic JSON) and routed.

Pure: parsing raises `AlertPayloadError` naming the field at fault, routing raises `NoRoute`.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import logging
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from bot.config import OrgConfig
from bot.errors import InvalidInput

SOURCES = ("alertmanager", "grafana", "generic")
FIRING, RESOLVED = "firing", "resolved"
_SUMMARY_LIMIT = 300
# Column sizes of the page (bot/paging/models.py) that an alert's own values go into.
_KEY_LIMIT = 255
_NAME_LIMIT = 200
_URL_LIMIT = 1000

log = logging.getLogger(__name__)


class AlertPayloadError(InvalidInput):
    """A webhook body that is not what its source sends; `field` says where (JSON-path-like)."""

    def __init__(self, field_path: str, message: str) -> None:
        super().__init__(f"{field_path}: {message}" if field_path else message)
        self.field = field_path
        self.reason = message


class NoRoute(InvalidInput):
    def __init__(self, labels: dict[str, str], field_path: str) -> None:
        shown = ", ".join(f"{k}={v}" for k, v in sorted(labels.items())) or "no labels"
        super().__init__(
            f"no alert route matches the labels ({shown}) and no alert_default_policy is set"
        )
        self.labels = labels
        self.field = field_path


@dataclass(frozen=True)
class Alert:
    source: str
    status: str  # firing | resolved
    fingerprint: str
    summary: str
    details: str = ""
    labels: dict[str, str] = field(default_factory=dict)
    annotations: dict[str, str] = field(default_factory=dict)
    starts_at: datetime | None = None
    generator_url: str | None = None
    runbook_url: str | None = None
    policy: str | None = None  # the generic format may name its policy outright
    field_path: str = ""  # where in the body this alert was, for error messages

    @property
    def dedup_key(self) -> str:
        return f"{self.source}:{self.fingerprint}"

    @property
    def name(self) -> str | None:
        return self.labels.get("alertname")


def parse(source: str, body: Any) -> list[Alert]:
    """Every alert in a webhook body, in order; raises AlertPayloadError for the first bad field."""
    if source not in SOURCES:
        raise ValueError(f"unknown alert source {source!r}")
    if not isinstance(body, dict):
        raise AlertPayloadError("", "the body must be a JSON object")
    alerts = _parse_generic(body) if source == "generic" else _parse_alertmanager_like(source, body)
    return [_storable(alert) for alert in alerts]


def parse_json(source: str, raw: bytes) -> list[Alert]:
    try:
        body = json.loads(raw or b"")
    except (ValueError, UnicodeDecodeError):
        raise AlertPayloadError("", "the body is not valid JSON") from None
    return parse(source, body)


# ---- Alertmanager v4 and Grafana (same envelope; Grafana adds fields we do not need) ----------


def _parse_alertmanager_like(source: str, body: dict[str, Any]) -> list[Alert]:
    raw_alerts = body.get("alerts")
    if not isinstance(raw_alerts, list) or not raw_alerts:
        raise AlertPayloadError("alerts", "must be a non-empty list of alerts")
    common_labels = _string_map(body.get("commonLabels"), "commonLabels", optional=True)
    common_annotations = _string_map(
        body.get("commonAnnotations"), "commonAnnotations", optional=True
    )
    alerts = []
    for index, raw in enumerate(raw_alerts):
        where = f"alerts[{index}]"
        if not isinstance(raw, dict):
            raise AlertPayloadError(where, "must be an object")
        status = _status(raw.get("status", body.get("status")), f"{where}.status")
        labels = {**common_labels, **_string_map(raw.get("labels"), f"{where}.labels")}
        if not labels:
            raise AlertPayloadError(f"{where}.labels", "must name the alert (at least alertname)")
        annotations = {
            **common_annotations,
            **_string_map(raw.get("annotations"), f"{where}.annotations", optional=True),
        }
        fingerprint = raw.get("fingerprint")
        if fingerprint is not None and (not isinstance(fingerprint, str) or not fingerprint):
            raise AlertPayloadError(f"{where}.fingerprint", "must be a non-empty string")
        summary = (
            annotations.get("summary")
            or annotations.get("title")
            or labels.get("alertname")
            or _label_text(labels)
        )
        alerts.append(
            Alert(
                source=source,
                status=status,
                fingerprint=fingerprint or _fingerprint(labels),
                summary=_clip(summary),
                details=annotations.get("description", ""),
                labels=labels,
                annotations=annotations,
                starts_at=_instant(raw.get("startsAt"), f"{where}.startsAt"),
                generator_url=_optional_text(raw.get("generatorURL"), f"{where}.generatorURL"),
                runbook_url=annotations.get("runbook_url") or annotations.get("runbook"),
                field_path=where,
            )
        )
    return alerts


# ---- generic JSON --------------------------------------------------------------------------


def _parse_generic(body: dict[str, Any]) -> list[Alert]:
    if "alerts" in body:
        raw_alerts = body["alerts"]
        if not isinstance(raw_alerts, list) or not raw_alerts:
            raise AlertPayloadError("alerts", "must be a non-empty list of alerts")
        return [_generic_alert(raw, f"alerts[{i}]") for i, raw in enumerate(raw_alerts)]
    return [_generic_alert(body, "")]


def _generic_alert(raw: Any, where: str) -> Alert:
    def at(name: str) -> str:
        return f"{where}.{name}" if where else name

    if not isinstance(raw, dict):
        raise AlertPayloadError(where, "must be an object")
    summary = raw.get("summary")
    if not isinstance(summary, str) or not summary.strip():
        raise AlertPayloadError(at("summary"), "is required: a short text saying what is wrong")
    labels = _string_map(raw.get("labels"), at("labels"), optional=True)
    dedup_key = raw.get("dedup_key")
    if dedup_key is not None and (not isinstance(dedup_key, str) or not dedup_key.strip()):
        raise AlertPayloadError(at("dedup_key"), "must be a non-empty string")
    details = raw.get("details", "")
    if not isinstance(details, str):
        raise AlertPayloadError(at("details"), "must be a string")
    policy = raw.get("policy")
    if policy is not None and (not isinstance(policy, str) or not policy):
        raise AlertPayloadError(at("policy"), "must be an escalation policy id")
    return Alert(
        source="generic",
        status=_status(raw.get("status", FIRING), at("status")),
        fingerprint=dedup_key.strip()
        if dedup_key
        else _fingerprint({**labels, "summary": summary}),
        summary=_clip(summary.strip()),
        details=details,
        labels=labels,
        runbook_url=_optional_text(raw.get("runbook_url"), at("runbook_url")),
        policy=policy,
        field_path=where,
    )


# ---- routing -------------------------------------------------------------------------------


def route(org: OrgConfig, alert: Alert) -> str:
    """The escalation policy for an alert: `alert_routes` in order, first match wins, then the
    default; NoRoute when neither applies."""
    if alert.policy:
        org.policy(alert.policy)  # an unknown policy is the sender's mistake: say so
        return alert.policy
    for candidate in org.alert_routes:
        if all(alert.labels.get(k) == v for k, v in candidate.match.items()):
            return candidate.policy
    default = org.alert_default_policy
    if default:
        return default
    raise NoRoute(alert.labels, f"{alert.field_path}.labels" if alert.field_path else "labels")


# ---- small readers -------------------------------------------------------------------------


def _status(value: Any, where: str) -> str:
    if value not in (FIRING, RESOLVED):
        raise AlertPayloadError(where, f"must be 'firing' or 'resolved', not {value!r}")
    return value


def _string_map(value: Any, where: str, optional: bool = False) -> dict[str, str]:
    if value is None and optional:
        return {}
    if not isinstance(value, dict):
        raise AlertPayloadError(where, "must be an object of names to strings")
    out = {}
    for key, item in value.items():
        if isinstance(item, bool) or not isinstance(item, str | int | float):
            raise AlertPayloadError(f"{where}.{key}", "must be a string")
        out[str(key)] = str(item)
    return out


def _instant(value: Any, where: str) -> datetime | None:
    if value in (None, ""):
        return None
    if not isinstance(value, str):
        raise AlertPayloadError(where, "must be an RFC 3339 time")
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        raise AlertPayloadError(where, f"{value!r} is not an RFC 3339 time") from None
    if parsed.tzinfo is None:
        raise AlertPayloadError(where, f"{value!r} has no time zone offset")
    return parsed


def _optional_text(value: Any, where: str) -> str | None:
    if value in (None, ""):
        return None
    if not isinstance(value, str):
        raise AlertPayloadError(where, "must be a string")
    return value


def _fingerprint(labels: dict[str, str]) -> str:
    """Alertmanager's own fingerprint is a hash of the label set; do the same when it is absent."""
    canonical = json.dumps(sorted(labels.items()), separators=(",", ":"))
    return hashlib.sha256(canonical.encode()).hexdigest()[:16]


def _label_text(labels: dict[str, str]) -> str:
    return ", ".join(f"{k}={v}" for k, v in sorted(labels.items()))


def _clip(text: str) -> str:
    text = " ".join(text.split())
    return text if len(text) <= _SUMMARY_LIMIT else text[: _SUMMARY_LIMIT - 1] + "…"


# ---- values every backend can store ------------------------------------------------------------


def _no_nul(value: Any) -> Any:
    """PostgreSQL text cannot hold NUL characters; Alertmanager would resend a refused batch
    forever, so they are dropped rather than failing the whole body."""
    if isinstance(value, str):
        return value.replace("\x00", "")
    if isinstance(value, dict):
        return {_no_nul(k): _no_nul(v) for k, v in value.items()}
    return value


def _storable(alert: Alert) -> Alert:
    """The alert with every field fitting its column, each change logged as a warning."""
    where = alert.field_path or "alert"
    fixed: dict[str, Any] = {}
    for name in ("fingerprint", "summary", "details", "generator_url", "runbook_url", "policy"):
        value = getattr(alert, name)
        if isinstance(value, str) and "\x00" in value:
            fixed[name] = _no_nul(value)
    for name in ("labels", "annotations"):
        value = getattr(alert, name)
        if _no_nul(value) != value:
            fixed[name] = _no_nul(value)
    if fixed:
        log.warning("%s: NUL characters removed from %s", where, ", ".join(sorted(fixed)))
    alert = dataclasses.replace(alert, **fixed)
    if len(alert.dedup_key) > _KEY_LIMIT:
        # A hash keeps distinct fingerprints distinct, which cutting them short would not.
        digest = hashlib.sha256(alert.fingerprint.encode()).hexdigest()
        log.warning(
            "%s: fingerprint of %s characters replaced by its SHA-256",
            where,
            len(alert.fingerprint),
        )
        alert = dataclasses.replace(alert, fingerprint=f"sha256:{digest}")
    for name in ("generator_url", "runbook_url"):
        url = getattr(alert, name)
        if url is not None and len(url) > _URL_LIMIT:
            # A link cut short leads nowhere: the page goes out without it.
            log.warning("%s: %s of %s characters left off the page", where, name, len(url))
            alert = dataclasses.replace(alert, **{name: None})
    name = alert.labels.get("alertname")
    if name is not None and len(name) > _NAME_LIMIT:
        log.warning("%s: alertname of %s characters shortened", where, len(name))
        labels = {**alert.labels, "alertname": name[: _NAME_LIMIT - 1] + "…"}
        alert = dataclasses.replace(alert, labels=labels)
    return alert
