"""The org config (`opsbot.yaml`): validated models, and errors that name the file, line and field."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from pathlib import Path
from typing import Annotated, Any, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import yaml
from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    PlainSerializer,
    PlainValidator,
    ValidationError,
    field_validator,
)
from pydantic_core import PydanticCustomError

from bot.durations import parse_duration
from bot.errors import (
    InvalidDuration,
    UnknownPolicy,
    UnknownQueue,
    UnknownRotation,
    UnknownTeam,
)

WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
_FULL_WEEKDAYS = ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")
_PERSON = re.compile(r"^(U|W)[A-Z0-9]{2,}$|^[^@\s]+@[^@\s]+\.[^@\s]+$")
_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
_CHANNEL = re.compile(r"^[CGD][A-Z0-9]{2,}$")
_USERGROUP = re.compile(r"^S[A-Z0-9]{2,}$")


# ---- scalar types -------------------------------------------------------------------------


def _duration(value: Any) -> timedelta:
    try:
        return parse_duration(value)
    except InvalidDuration:
        raise PydanticCustomError(
            "duration", "'{value}' is not a duration (15m, 4h, 1d, 2w)", {"value": value}
        ) from None


def _weekday(value: Any) -> str:
    text = str(value).strip().lower()
    if text in WEEKDAYS:
        return text
    if text in _FULL_WEEKDAYS:
        return WEEKDAYS[_FULL_WEEKDAYS.index(text)]
    raise PydanticCustomError("weekday", "'{value}' is not a weekday", {"value": value})


def _time_of_day(value: Any) -> time:
    if isinstance(value, time):
        return value
    if isinstance(value, int):
        # YAML 1.1 reads an unquoted 10:00 as the sexagesimal number 600.
        value = f"{value // 60:02d}:{value % 60:02d}"
    match = re.fullmatch(r"(\d{1,2}):(\d{2})", str(value).strip())
    if not match or int(match[1]) > 23 or int(match[2]) > 59:
        raise PydanticCustomError(
            "time_of_day", "'{value}' is not a time of day (HH:MM)", {"value": value}
        )
    return time(int(match[1]), int(match[2]))


def _zone(value: Any) -> str:
    try:
        ZoneInfo(str(value))
    except (ZoneInfoNotFoundError, ValueError):
        raise PydanticCustomError(
            "zone",
            "'{value}' is not a time zone (use an IANA name like Europe/London)",
            {"value": value},
        ) from None
    return str(value)


def _public_holidays(value: Any) -> str:
    """A country code, optionally with a subdivision: "US", "US-NY", "GB-SCT", "DE-BY"."""
    import holidays

    text = str(value).strip()
    country, _, subdivision = text.partition("-")
    try:
        holidays.country_holidays(country.upper(), subdiv=subdivision.upper() or None)
    except NotImplementedError as exc:
        raise PydanticCustomError(
            "public_holidays",
            "'{value}' is not a known country or subdivision ({reason}); use an ISO code "
            "like US, GB-SCT or DE-BY",
            {"value": value, "reason": str(exc)},
        ) from None
    return text.upper()


def _person(value: Any) -> str:
    text = str(value).strip()
    if not _PERSON.match(text):
        raise PydanticCustomError(
            "person",
            "'{value}' is neither a Slack user id (U...) nor an e-mail address",
            {"value": value},
        )
    return text


def _email(value: Any) -> str:
    text = str(value).strip()
    if not _EMAIL.match(text):
        raise PydanticCustomError("email", "'{value}' is not an e-mail address", {"value": value})
    return text


def _channel(value: Any) -> str:
    text = str(value).strip()
    if not _CHANNEL.match(text):
        raise PydanticCustomError(
            "channel", "'{value}' is not a Slack channel id (C...)", {"value": value}
        )
    return text


def _usergroup(value: Any) -> str:
    text = str(value).strip()
    if not _USERGROUP.match(text):
        raise PydanticCustomError(
            "usergroup", "'{value}' is not a Slack user group id (S...)", {"value": value}
        )
    return text


def _local_datetime(value: Any) -> datetime:
    if isinstance(value, datetime):
        return value.replace(tzinfo=None)
    try:
        return datetime.strptime(str(value).strip(), "%Y-%m-%d %H:%M")
    except ValueError:
        raise PydanticCustomError(
            "local_datetime",
            "'{value}' is not a local date and time (YYYY-MM-DD HH:MM)",
            {"value": value},
        ) from None


# PlainValidator keeps the WrittenDuration (pydantic would rebuild a plain timedelta).
Duration = Annotated[
    timedelta, PlainValidator(_duration), PlainSerializer(lambda d: d.total_seconds())
]
Weekday = Annotated[str, BeforeValidator(_weekday)]
TimeOfDay = Annotated[time, BeforeValidator(_time_of_day)]
Zone = Annotated[str, BeforeValidator(_zone)]
Person = Annotated[str, BeforeValidator(_person)]
ChannelId = Annotated[str, BeforeValidator(_channel)]
Email = Annotated[str, BeforeValidator(_email)]
UsergroupId = Annotated[str, BeforeValidator(_usergroup)]
PublicHolidays = Annotated[str, BeforeValidator(_public_holidays)]
LocalDateTime = Annotated[datetime, BeforeValidator(_local_datetime)]


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


# ---- sections -----------------------------------------------------------------------------


class BusinessHours(_Model):
    days: list[Weekday] = Field(default_factory=lambda: list(WEEKDAYS[:5]))
    start: TimeOfDay = time(9, 0)
    end: TimeOfDay = time(17, 0)

    @field_validator("end")
    @classmethod
    def _end_after_start(cls, end: time, info: Any) -> time:
        start = info.data.get("start")
        if start is not None and end <= start:
            raise PydanticCustomError("hours", "end must be later than start", {})
        return end


class Team(_Model):
    id: str
    name: str
    parent: str | None = None
    channel: ChannelId | None = None
    timezone: Zone | None = None
    # The country (and subdivision) whose public holidays this team takes off; the org's if unset.
    public_holidays: PublicHolidays | None = None
    managers: list[Person] = Field(default_factory=list)
    members: list[Person] = Field(default_factory=list)


class Handoff(_Model):
    weekday: Weekday
    time: TimeOfDay


class Rotation(_Model):
    id: str
    team: str
    kind: Literal["oncall", "support"]
    members: list[Person] = Field(min_length=1)
    start: date
    handoff: Handoff
    length: Duration = timedelta(weeks=1)
    secondary: str | None = None
    usergroup: UsergroupId | None = None
    reminders: list[Duration] = Field(default_factory=list)

    @field_validator("length")
    @classmethod
    def _whole_days(cls, length: timedelta) -> timedelta:
        if length <= timedelta(0) or length % timedelta(days=1):
            raise PydanticCustomError(
                "length", "a shift length is a whole number of days or weeks", {}
            )
        return length


class EscalationStep(_Model):
    notify: str
    after: Duration = timedelta(0)

    @field_validator("notify")
    @classmethod
    def _target(cls, notify: str) -> str:
        kind, _, ref = notify.partition(":")
        if kind not in ("rotation", "user", "webhook") or not ref:
            raise PydanticCustomError(
                "target",
                "'{value}' is not a target (rotation:<id>, user:<Slack id> or webhook:<id>)",
                {"value": notify},
            )
        if kind == "user":
            _person(ref)
        return notify

    @property
    def target_kind(self) -> str:
        return self.notify.partition(":")[0]

    @property
    def target_ref(self) -> str:
        return self.notify.partition(":")[2]


PAGERDUTY_EVENTS_URL = "https://events.pagerduty.com/v2/enqueue"


class Webhook(_Model):
    """An outbound webhook an escalation step can notify (`notify: "webhook:<id>"`), so a
    phone-capable service (PagerDuty, Opsgenie, a paging gateway) can ring someone. Secrets are
    never in the file: the config names the environment variable that holds them."""

    id: str
    format: Literal["pagerduty", "json"]
    url: str | None = None  # PagerDuty: the Events API v2 endpoint unless given
    routing_key_env: str | None = None  # PagerDuty: the integration's routing key
    token_env: str | None = None  # json: sent as `Authorization: Bearer <token>` when set
    severity: Literal["critical", "error", "warning", "info"] = "critical"  # PagerDuty

    @field_validator("url")
    @classmethod
    def _http_url(cls, url: str | None) -> str | None:
        if url is not None and not re.match(r"^https?://[^\s/]+", url):
            raise PydanticCustomError("url", "'{value}' is not an http(s) URL", {"value": url})
        return url

    @property
    def endpoint(self) -> str | None:
        return self.url or (PAGERDUTY_EVENTS_URL if self.format == "pagerduty" else None)


class EscalationPolicy(_Model):
    id: str
    steps: list[EscalationStep] = Field(min_length=1)
    repeat: int = Field(default=0, ge=0, le=10)
    # How long the last step has to acknowledge before the chain repeats (default: as long as
    # the step before it had, or 15m for a one-step policy).
    repeat_after: Duration | None = None


class AlertRoute(_Model):
    match: dict[str, str] = Field(min_length=1)
    policy: str


class Application(_Model):
    id: str
    name: str
    tier: int = Field(ge=0, le=3)
    owner_team: str


class OfficeHours(_Model):
    weekday: Weekday
    time: TimeOfDay
    length: Duration = timedelta(hours=1)


class Queue(_Model):
    id: str
    team: str
    channels: list[ChannelId] = Field(min_length=1)
    triage_channel: ChannelId | None = None
    t1: str
    t2: str | None = None
    critical_policy: str | None = None
    office_hours: OfficeHours | None = None


class SlaTarget(_Model):
    first_response: Duration
    resolution: Duration
    business_hours: bool = True


def _default_sla() -> dict[str, SlaTarget]:
    return {
        "critical": SlaTarget(
            first_response=timedelta(minutes=15),
            resolution=timedelta(hours=4),
            business_hours=False,
        ),
        "high": SlaTarget(first_response=timedelta(hours=1), resolution=timedelta(days=1)),
        "normal": SlaTarget(first_response=timedelta(hours=4), resolution=timedelta(days=3)),
        "low": SlaTarget(first_response=timedelta(days=1), resolution=timedelta(weeks=2)),
    }


Severity = Literal["critical", "high", "normal", "low"]


class Support(_Model):
    queues: list[Queue] = Field(default_factory=list)
    sla: dict[Severity, SlaTarget] = Field(default_factory=_default_sla)
    experts_channel: ChannelId | None = None
    experts: list[Person] = Field(default_factory=list)
    # The weekly report flags a category for investigation above this many tickets a week.
    investigate_threshold: int = Field(default=3, ge=1)


class Wins(_Model):
    cadence: Duration = timedelta(weeks=2)
    first_deadline: LocalDateTime
    reminders: list[Duration] = Field(default_factory=list)
    # Business time each level above gets to pick highlights from the level below.
    selection_window: Duration = timedelta(days=1)
    digest_channel: ChannelId | None = None
    stakeholder_channel: ChannelId | None = None
    stakeholder_emails: list[Email] = Field(default_factory=list)


class NudgeBand(_Model):
    until: Duration
    every: Duration


class WorkingHours(_Model):
    """Local hours of a person's day in which nudges may land (in that person's own zone)."""

    start: TimeOfDay = time(10, 0)
    end: TimeOfDay = time(16, 0)

    @field_validator("end")
    @classmethod
    def _end_after_start(cls, end: time, info: Any) -> time:
        start = info.data.get("start")
        if start is not None and end <= start:
            raise PydanticCustomError("hours", "end must be later than start", {})
        return end


class PlatformMigrations(_Model):
    # The team told about ownership drift and sent the daily summary.
    platform_team: str | None = None
    announce_channels: list[ChannelId] = Field(default_factory=list)
    info_only_beyond: Duration = timedelta(weeks=52)
    nudge_cadence: list[NudgeBand] = Field(default_factory=list)
    working_hours: WorkingHours = Field(default_factory=WorkingHours)
    max_concurrent_per_team: int = Field(default=2, ge=1)


class OrgConfig(_Model):
    timezone: Zone = "UTC"
    business_hours: BusinessHours = Field(default_factory=BusinessHours)
    holidays: list[date] = Field(default_factory=list)
    public_holidays: PublicHolidays | None = None
    admins: list[Person] = Field(default_factory=list)
    teams: list[Team] = Field(default_factory=list)
    rotations: list[Rotation] = Field(default_factory=list)
    escalation_policies: list[EscalationPolicy] = Field(default_factory=list)
    webhooks: list[Webhook] = Field(default_factory=list)
    alert_routes: list[AlertRoute] = Field(default_factory=list)
    # The policy for alerts no route matches; without it such alerts are refused (HTTP 422).
    alert_default_policy: str | None = None
    applications: list[Application] = Field(default_factory=list)
    support: Support = Field(default_factory=Support)
    wins: Wins | None = None
    platform_migrations: PlatformMigrations = Field(default_factory=PlatformMigrations)

    # -- lookups: one answer per question, raising the core's specific errors --------------

    def team(self, team_id: str) -> Team:
        found = _index_by_id(self.teams).get(team_id)
        if found is None:
            raise UnknownTeam(team_id)
        return found

    def rotation(self, rotation_id: str) -> Rotation:
        found = _index_by_id(self.rotations).get(rotation_id)
        if found is None:
            raise UnknownRotation(rotation_id)
        return found

    def policy(self, policy_id: str) -> EscalationPolicy:
        for policy in self.escalation_policies:
            if policy.id == policy_id:
                return policy
        raise UnknownPolicy(policy_id)

    def webhook(self, webhook_id: str) -> Webhook | None:
        return next((w for w in self.webhooks if w.id == webhook_id), None)

    def queue(self, queue_id: str) -> Queue:
        for queue in self.support.queues:
            if queue.id == queue_id:
                return queue
        raise UnknownQueue(queue_id)

    def application(self, app_id: str) -> Application | None:
        return next((a for a in self.applications if a.id == app_id), None)

    def zone(self, team_id: str | None = None) -> ZoneInfo:
        """The team's zone when it has one, else the org's."""
        if team_id:
            team = self.team(team_id)
            if team.timezone:
                return ZoneInfo(team.timezone)
        return ZoneInfo(self.timezone)

    def public_holidays_of(self, team_id: str | None = None) -> str | None:
        """The team's public-holiday calendar when it names one, else the org's."""
        if team_id:
            team = self.team(team_id)
            if team.public_holidays:
                return team.public_holidays
        return self.public_holidays

    def rotation_zone(self, rotation_id: str) -> ZoneInfo:
        return self.zone(self.rotation(rotation_id).team)

    def rotations_of_team(self, team_id: str) -> list[Rotation]:
        return [r for r in self.rotations if r.team == team_id]

    def team_of_person(self, person: str) -> list[Team]:
        return [t for t in self.teams if person in t.members or person in t.managers]


# Teams and rotations by id, for each list in use (an org of 1,000 rotations is asked for each of
# them), kept outside the frozen model so copies and equality are untouched. The entry holds its
# list, so the id it is keyed by cannot be reused while the entry exists.
_INDEXES: dict[int, tuple[list[Any], dict[str, Any]]] = {}


def _index_by_id(items: list[Any]) -> dict[str, Any]:
    entry = _INDEXES.get(id(items))
    if entry is None or entry[0] is not items:
        by_id: dict[str, Any] = {}
        for item in items:
            by_id.setdefault(item.id, item)  # the first one, as a scan would find
        if len(_INDEXES) >= 128:  # config reloads and test orgs: keep the newest few
            _INDEXES.clear()
        entry = _INDEXES[id(items)] = (items, by_id)
    return entry[1]


# ---- loading with line numbers ------------------------------------------------------------


@dataclass(frozen=True)
class ConfigIssue:
    """One problem found in a config file, located by its path of keys and indexes."""

    loc: tuple[str | int, ...]
    message: str
    severity: Literal["error", "warning"] = "error"
    line: int | None = None
    filename: str = "opsbot.yaml"

    @property
    def field(self) -> str:
        text = ""
        for part in self.loc:
            text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else str(part))
        return text

    def __str__(self) -> str:
        where = f"{self.filename}:{self.line}" if self.line else self.filename
        prefix = "warning: " if self.severity == "warning" else ""
        field_text = f" {self.field}:" if self.loc else ""
        return f"{where}{field_text} {prefix}{self.message}"


@dataclass
class ConfigReport:
    org: OrgConfig | None
    issues: list[ConfigIssue] = field(default_factory=list)

    @property
    def errors(self) -> list[ConfigIssue]:
        return [i for i in self.issues if i.severity == "error"]

    @property
    def warnings(self) -> list[ConfigIssue]:
        return [i for i in self.issues if i.severity == "warning"]

    @property
    def ok(self) -> bool:
        return self.org is not None and not self.errors


class ConfigError(Exception):
    def __init__(self, issues: list[ConfigIssue]) -> None:
        super().__init__("\n".join(str(i) for i in issues))
        self.issues = issues


# libyaml's parser when PyYAML was built with it (about 10x faster than the pure-Python one).
_FAST_LOADER: type = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


def _compose_and_load(text: str) -> tuple[yaml.Node | None, Any]:
    """Parse the text once: the node tree (for line numbers and duplicate keys) and the data
    built from that same tree, as `yaml.safe_load` would build it.

    Text that is not valid YAML is parsed again by the pure-Python parser, so its error (the
    message and the line) reads the same whichever parser PyYAML has.
    """
    try:
        loader = _FAST_LOADER(text)
        try:
            root = loader.get_single_node()
            data = loader.construct_document(root) if root is not None else None
        finally:
            loader.dispose()
    except yaml.YAMLError:
        if _FAST_LOADER is yaml.SafeLoader:
            raise
        yaml.compose(text, Loader=yaml.SafeLoader)  # raises the reference parser's error
        raise  # both parsers should fail; if only libyaml did, its error stands
    return root, data


def _line_map(node: yaml.Node | None, path: tuple = (), out: dict | None = None) -> dict:
    """Map every key path in a composed YAML tree to the 1-based line it starts on."""
    out = {} if out is None else out
    if node is None:
        return out
    out.setdefault(path, node.start_mark.line + 1)
    if isinstance(node, yaml.MappingNode):
        for key_node, value_node in node.value:
            key_path = (*path, key_node.value)
            out[key_path] = key_node.start_mark.line + 1
            _line_map(value_node, key_path, out)
            out[key_path] = key_node.start_mark.line + 1
    elif isinstance(node, yaml.SequenceNode):
        for index, item in enumerate(node.value):
            _line_map(item, (*path, index), out)
    return out


def _duplicate_keys(node: yaml.Node | None, path: tuple = ()) -> list[ConfigIssue]:
    """Keys written twice in one mapping: PyYAML keeps the last silently, hiding the first."""
    issues: list[ConfigIssue] = []
    if isinstance(node, yaml.MappingNode):
        seen: set[Any] = set()
        for key_node, value_node in node.value:
            key_path = (*path, key_node.value)
            if key_node.value in seen:
                issues.append(
                    ConfigIssue(
                        key_path,
                        f"key '{key_node.value}' is given twice",
                        line=key_node.start_mark.line + 1,
                    )
                )
            seen.add(key_node.value)
            issues += _duplicate_keys(value_node, key_path)
    elif isinstance(node, yaml.SequenceNode):
        for index, item in enumerate(node.value):
            issues += _duplicate_keys(item, (*path, index))
    return issues


def _line_for(lines: dict, loc: tuple) -> int | None:
    for end in range(len(loc), -1, -1):
        if loc[:end] in lines:
            return lines[loc[:end]]
    return None


def _clean_loc(loc: tuple) -> tuple:
    # Pydantic adds validator names (e.g. 'function-before[...]') to some locations.
    return tuple(p for p in loc if not (isinstance(p, str) and "[" in p and "]" in p))


def _pydantic_issues(error: ValidationError) -> list[ConfigIssue]:
    issues = []
    for item in error.errors():
        loc = _clean_loc(item["loc"])
        message = item["msg"]
        if item["type"] == "extra_forbidden":
            message = f"unknown key '{loc[-1]}'"
        elif item["type"] == "missing":
            message = "is required"
        elif message.startswith("Value error, "):
            message = message[len("Value error, ") :]
        elif item["type"] == "literal_error":
            message = (
                f"'{item.get('input')}' is not one of: {message.split('Input should be ')[-1]}"
            )
        issues.append(ConfigIssue(loc, message))
    return issues


# A semantic check (sustainability rules, a capability's own cross references) returns the
# issues it finds in a structurally valid config. The cross references below always run; each
# capability lists its own checks in `handlers.CAPABILITIES`, and callers pass them in
# (`handlers.org_checks()`), so this module imports no capability.
OrgCheck = Callable[[OrgConfig], Iterable[ConfigIssue]]


def check_org_text(
    text: str, filename: str = "opsbot.yaml", checks: Sequence[OrgCheck] = ()
) -> ConfigReport:
    """Validate config text; every issue carries the file name and the line it points at."""
    try:
        root, data = _compose_and_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line = mark.line + 1 if mark else None
        problem = getattr(exc, "problem", None) or str(exc)
        return ConfigReport(
            None, [ConfigIssue((), f"not valid YAML: {problem}", line=line, filename=filename)]
        )
    lines = _line_map(root)
    duplicates = [
        ConfigIssue(i.loc, i.message, line=i.line, filename=filename) for i in _duplicate_keys(root)
    ]
    if data is None:
        data = {}
    if not isinstance(data, dict):
        return ConfigReport(
            None, [ConfigIssue((), "the top level must be a mapping", line=1, filename=filename)]
        )
    try:
        org = OrgConfig.model_validate(data)
    except ValidationError as exc:
        issues = _pydantic_issues(exc)
        org = None
    else:
        issues = [issue for check in (_check_references, *checks) for issue in check(org)]
    located = [
        ConfigIssue(i.loc, i.message, i.severity, _line_for(lines, i.loc), filename) for i in issues
    ]
    return ConfigReport(org, duplicates + located)


def check_org_file(path: str | Path, checks: Sequence[OrgCheck] = ()) -> ConfigReport:
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        return ConfigReport(
            None, [ConfigIssue((), f"cannot read: {exc.strerror}", filename=str(path))]
        )
    return check_org_text(text, str(path), checks)


def parse_org(
    text: str, filename: str = "opsbot.yaml", checks: Sequence[OrgCheck] = ()
) -> OrgConfig:
    """Parse and validate config text, raising ConfigError on any error (warnings pass)."""
    report = check_org_text(text, filename, checks)
    if not report.ok:
        raise ConfigError(report.errors)
    assert report.org is not None
    return report.org


def load_org(path: str | Path, checks: Sequence[OrgCheck] = ()) -> OrgConfig:
    report = check_org_file(path, checks)
    if not report.ok:
        raise ConfigError(report.errors)
    assert report.org is not None
    return report.org


def _check_webhooks(org: OrgConfig) -> Iterable[ConfigIssue]:
    for i, hook in enumerate(org.webhooks):
        loc = ("webhooks", i)
        if hook.format == "pagerduty" and not hook.routing_key_env:
            yield ConfigIssue(
                (*loc, "routing_key_env"),
                "a PagerDuty webhook needs routing_key_env: the environment variable holding "
                "the integration's routing key",
            )
        if hook.format == "json" and not hook.url:
            yield ConfigIssue((*loc, "url"), "a json webhook needs a url")


# ---- cross references ---------------------------------------------------------------------


def _check_references(org: OrgConfig) -> Iterable[ConfigIssue]:
    teams = {t.id for t in org.teams}
    rotations = {r.id for r in org.rotations}
    policies = {p.id for p in org.escalation_policies}

    def unique(items: list, section: tuple) -> Iterable[ConfigIssue]:
        seen: set[str] = set()
        for index, item in enumerate(items):
            if item.id in seen:
                yield ConfigIssue((*section, index, "id"), f"'{item.id}' is defined twice")
            seen.add(item.id)

    yield from unique(org.teams, ("teams",))
    yield from unique(org.rotations, ("rotations",))
    yield from unique(org.escalation_policies, ("escalation_policies",))
    yield from unique(org.webhooks, ("webhooks",))
    yield from _check_webhooks(org)
    yield from unique(org.applications, ("applications",))
    yield from unique(org.support.queues, ("support", "queues"))

    for i, team in enumerate(org.teams):
        if team.parent is not None and team.parent not in teams:
            yield ConfigIssue(("teams", i, "parent"), f"unknown team '{team.parent}'")
        if team.parent == team.id:
            yield ConfigIssue(("teams", i, "parent"), "a team cannot be its own parent")
    for i, rotation in enumerate(org.rotations):
        if rotation.team not in teams:
            yield ConfigIssue(("rotations", i, "team"), f"unknown team '{rotation.team}'")
        if rotation.secondary is not None:
            if rotation.secondary not in rotations:
                yield ConfigIssue(
                    ("rotations", i, "secondary"), f"unknown rotation '{rotation.secondary}'"
                )
            elif rotation.secondary == rotation.id:
                yield ConfigIssue(
                    ("rotations", i, "secondary"), "a rotation cannot be its own secondary"
                )
    for i, policy in enumerate(org.escalation_policies):
        for j, step in enumerate(policy.steps):
            if step.target_kind == "rotation" and step.target_ref not in rotations:
                yield ConfigIssue(
                    ("escalation_policies", i, "steps", j, "notify"),
                    f"unknown rotation '{step.target_ref}'",
                )
            if step.target_kind == "webhook" and org.webhook(step.target_ref) is None:
                yield ConfigIssue(
                    ("escalation_policies", i, "steps", j, "notify"),
                    f"unknown webhook '{step.target_ref}' (define it under webhooks:)",
                )
    for i, route in enumerate(org.alert_routes):
        if route.policy not in policies:
            yield ConfigIssue(("alert_routes", i, "policy"), f"unknown policy '{route.policy}'")
    if org.alert_default_policy is not None and org.alert_default_policy not in policies:
        yield ConfigIssue(("alert_default_policy",), f"unknown policy '{org.alert_default_policy}'")
    for i, policy in enumerate(org.escalation_policies):
        for j in range(1, len(policy.steps)):
            if policy.steps[j].after < policy.steps[j - 1].after:
                yield ConfigIssue(
                    ("escalation_policies", i, "steps", j, "after"),
                    "steps fire in order: 'after' counts from the page, so it cannot be "
                    "earlier than the step before",
                )
    platform_team = org.platform_migrations.platform_team
    if platform_team is not None and platform_team not in teams:
        yield ConfigIssue(
            ("platform_migrations", "platform_team"), f"unknown team '{platform_team}'"
        )
    for i, app in enumerate(org.applications):
        if app.owner_team not in teams:
            yield ConfigIssue(("applications", i, "owner_team"), f"unknown team '{app.owner_team}'")
    for i, queue in enumerate(org.support.queues):
        loc = ("support", "queues", i)
        if queue.team not in teams:
            yield ConfigIssue((*loc, "team"), f"unknown team '{queue.team}'")
        for key in ("t1", "t2"):
            ref = getattr(queue, key)
            if ref is not None and ref not in rotations:
                yield ConfigIssue((*loc, key), f"unknown rotation '{ref}'")
        if queue.critical_policy is not None and queue.critical_policy not in policies:
            yield ConfigIssue(
                (*loc, "critical_policy"), f"unknown policy '{queue.critical_policy}'"
            )
