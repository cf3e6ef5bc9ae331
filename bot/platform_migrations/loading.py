"""Reading a migration file (the `migration.example.yaml` contract) and storing it.

The file must say why the migration matters and why its deadline is that date: a deadline
without its reason is the book's first antipattern (the context-free deadline).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator
from sqlmodel import Session

from bot.config import (
    ConfigIssue,
    OrgConfig,
    _line_for,
    _line_map,
    _pydantic_issues,
)
from bot.errors import InvalidInput, NotFound
from bot.platform_migrations.models import DRAFT, STAGES, Migration

DEADLINE_REASON_MATTERS = (
    "deadline_reason is required: say why the deadline is that date (an end-of-life date, a "
    "contract end, a price change). A deadline without its reason is a context-free deadline: "
    "owners cannot weigh it against their own work, and it reads as arbitrary."
)


class UnknownMigration(NotFound):
    def __init__(self, migration_id: str) -> None:
        super().__init__(f"There is no migration '{migration_id}'.")


class MigrationFileError(InvalidInput):
    def __init__(self, issues: list[ConfigIssue]) -> None:
        super().__init__("\n".join(str(i) for i in issues))
        self.issues = issues


class _Spec(BaseModel):
    model_config = ConfigDict(extra="forbid")


class StepRef(_Spec):
    service: str
    step: str


class DoneWhen(_Spec):
    tag: str | None = None  # a tag that appears on the service at the next catalog import
    annotation: str | None = None  # `key` or `key=value`
    check: str | None = None  # a CI check reporting through POST /migrations/{id}/progress


class StepSpec(_Spec):
    id: str = Field(pattern=r"^[a-z0-9][a-z0-9_-]{0,63}$")
    title: str = Field(min_length=1)
    how: str | None = None
    after: list[str | StepRef] = Field(default_factory=list)
    done_when: DoneWhen | None = None


class TargetSpec(_Spec):
    tags: list[str] = Field(default_factory=list)
    systems: list[str] = Field(default_factory=list)
    owners: list[str] = Field(default_factory=list)
    services: list[str] = Field(default_factory=list)
    exclude: list[str] = Field(default_factory=list)

    @field_validator("tags", "systems", "owners", "services", "exclude")
    @classmethod
    def _lower(cls, values: list[str]) -> list[str]:
        return [str(v).strip().lower() for v in values]


class Docs(_Spec):
    on_ramp: str | None = None
    off_ramp: str | None = None


class MigrationSpec(_Spec):
    id: str = Field(pattern=r"^[a-z0-9][a-z0-9_-]{0,63}$")
    title: str = Field(min_length=1, max_length=200)
    why: str = Field(min_length=1)
    deadline: date
    deadline_reason: str | None = None
    mandated: bool = False
    sponsor: str | None = None
    channel: str | None = Field(default=None, pattern=r"^[CG][A-Z0-9]{2,}$")
    docs: Docs = Field(default_factory=Docs)
    stage: Literal["draft", "pilot", "active", "long_tail", "done"] = DRAFT
    pilot_teams: list[str] = Field(default_factory=list)
    targets: TargetSpec = Field(default_factory=TargetSpec)
    steps: list[StepSpec] = Field(min_length=1)


def check_spec(spec: MigrationSpec, org: OrgConfig) -> list[ConfigIssue]:
    """What the schema cannot say: reasons, sponsors, step references, known teams."""
    issues: list[ConfigIssue] = []
    if not (spec.deadline_reason or "").strip():
        issues.append(ConfigIssue(("deadline_reason",), DEADLINE_REASON_MATTERS))
    if spec.mandated and not spec.sponsor:
        issues.append(
            ConfigIssue(
                ("sponsor",),
                "a mandated migration needs a sponsor: the senior leader who stands behind the "
                "mandate and decides on exemptions",
            )
        )
    teams = {t.id for t in org.teams}
    for i, team in enumerate(spec.pilot_teams):
        if team not in teams:
            issues.append(ConfigIssue(("pilot_teams", i), f"unknown team '{team}'"))
    if not any(getattr(spec.targets, k) for k in ("tags", "systems", "owners", "services")):
        issues.append(
            ConfigIssue(
                ("targets",),
                "say which services this is for (tags, systems, owners or services); a notice "
                "to everyone makes each owner work out whether it applies to them",
            )
        )
    seen: set[str] = set()
    all_ids = {s.id for s in spec.steps}
    for i, step in enumerate(spec.steps):
        if step.id in seen:
            issues.append(ConfigIssue(("steps", i, "id"), f"step '{step.id}' is defined twice"))
        for j, ref in enumerate(step.after):
            loc = ("steps", i, "after", j)
            if isinstance(ref, str):
                if ref == step.id:
                    issues.append(ConfigIssue(loc, "a step cannot wait on itself"))
                elif ref not in seen:
                    issues.append(
                        ConfigIssue(
                            loc,
                            f"'{ref}' is not an earlier step of this migration "
                            "(a step waits on steps listed before it)",
                        )
                    )
            elif ref.step not in all_ids:
                issues.append(ConfigIssue(loc, f"there is no step '{ref.step}'"))
        if step.done_when is not None and not (
            step.done_when.tag or step.done_when.annotation or step.done_when.check
        ):
            issues.append(ConfigIssue(("steps", i, "done_when"), "give a tag, annotation or check"))
        seen.add(step.id)
    return issues


def parse_migration_text(
    text: str, org: OrgConfig, filename: str = "migration.yaml"
) -> MigrationSpec:
    try:
        root = yaml.compose(text, Loader=yaml.SafeLoader)
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        problem = getattr(exc, "problem", None) or str(exc)
        issue = ConfigIssue((), f"not valid YAML: {problem}", line=mark.line + 1 if mark else None)
        raise MigrationFileError([_at(issue, filename)]) from None
    if not isinstance(data, dict):
        raise MigrationFileError([ConfigIssue((), "the file must be a mapping", filename=filename)])
    lines = _line_map(root)
    return _validate(data, org, lambda issue: _at(issue, filename, _line_for(lines, issue.loc)))


def parse_migration_data(data: dict[str, Any], org: OrgConfig) -> MigrationSpec:
    """The same checks for fields that came from the `/migration new` form."""
    return _validate(data, org, lambda issue: issue)


def _validate(data: dict[str, Any], org: OrgConfig, locate: Any) -> MigrationSpec:
    try:
        spec = MigrationSpec.model_validate(data)
    except ValidationError as exc:
        raise MigrationFileError([locate(i) for i in _pydantic_issues(exc)]) from None
    issues = check_spec(spec, org)
    if issues:
        raise MigrationFileError([locate(i) for i in issues])
    return spec


def _at(issue: ConfigIssue, filename: str, line: int | None = None) -> ConfigIssue:
    return ConfigIssue(issue.loc, issue.message, issue.severity, line or issue.line, filename)


def read_migration_file(path: str | Path, org: OrgConfig) -> MigrationSpec:
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise MigrationFileError(
            [ConfigIssue((), f"cannot read: {exc.strerror}", filename=str(path))]
        ) from None
    return parse_migration_text(text, org, str(path))


# ---- storing --------------------------------------------------------------------------------


@dataclass
class Saved:
    migration: Migration
    created: bool
    changed: list[str] = field(default_factory=list)
    requested_stage: str = DRAFT


def save_spec(session: Session, spec: MigrationSpec, now: datetime, by: str | None = None) -> Saved:
    """Create or update the migration's definition. The stage is not changed here: moving to
    pilot or active goes through `lifecycle.change_stage`, which checks and announces."""
    values: dict[str, Any] = {
        "title": spec.title.strip(),
        "why": spec.why.strip(),
        "deadline": spec.deadline,
        "deadline_reason": (spec.deadline_reason or "").strip(),
        "mandated": spec.mandated,
        "sponsor": spec.sponsor,
        "channel": spec.channel,
        "on_ramp": spec.docs.on_ramp,
        "off_ramp": spec.docs.off_ramp,
        "pilot_teams": list(spec.pilot_teams),
        "selectors": spec.targets.model_dump(),
        "steps": [s.model_dump(exclude_none=True) for s in spec.steps],
    }
    migration = session.get(Migration, spec.id)
    if migration is None:
        migration = Migration(
            id=spec.id,
            created_by=by,
            created_at=now,
            updated_at=now,
            stage_changed_at=now,
            **values,
        )
        session.add(migration)
        session.flush()
        return Saved(migration, True, list(values), spec.stage)
    changed = [k for k, v in values.items() if getattr(migration, k) != v]
    for key in changed:
        setattr(migration, key, values[key])
    if changed:
        migration.updated_at = now
    session.flush()
    return Saved(migration, False, changed, spec.stage)


def get_migration(session: Session, migration_id: str) -> Migration:
    migration = session.get(Migration, (migration_id or "").strip().lower())
    if migration is None:
        raise UnknownMigration(migration_id)
    return migration


def steps_of(migration: Migration) -> list[StepSpec]:
    return [StepSpec.model_validate(s) for s in migration.steps]


def step_of(migration: Migration, step_id: str) -> StepSpec:
    for step in steps_of(migration):
        if step.id == step_id:
            return step
    raise NotFound(f"Migration '{migration.id}' has no step '{step_id}'.")


def stage_index(stage: str) -> int:
    return STAGES.index(stage)
