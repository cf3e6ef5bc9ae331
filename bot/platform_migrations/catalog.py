"""The ownership catalog: Backstage `catalog-info.yaml` imports, and who owns a service.

The book (chapter 9) asks platform teams to centralise ownership metadata so migrations can be
targeted precisely and organisational drift is noticed. Every feature asks `owner_of`.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import yaml
from sqlmodel import Session, select

from bot import outbox
from bot.config import OrgConfig
from bot.directory import Directory
from bot.errors import InvalidInput
from bot.mrkdwn import escape
from bot.platform_migrations.models import CatalogEntity

KINDS = ("component", "system", "group", "user")
FIELDS = ("title", "owner", "system", "lifecycle", "parent", "email", "tags", "annotations")


class CatalogFileError(InvalidInput):
    """A malformed catalog file; nothing of the import it belongs to is kept."""

    def __init__(self, path: str, line: int | None, message: str) -> None:
        where = f"{path}:{line}" if line else path
        super().__init__(f"{where}: {message}")
        self.path, self.line = path, line


@dataclass
class Entity:
    kind: str
    name: str
    source: str
    title: str | None = None
    owner: str | None = None
    system: str | None = None
    lifecycle: str | None = None
    parent: str | None = None
    email: str | None = None
    tags: list[str] = field(default_factory=list)
    annotations: dict[str, str] = field(default_factory=dict)
    member_of: list[str] = field(default_factory=list)


@dataclass
class ImportResult:
    added: list[str] = field(default_factory=list)
    changed: list[str] = field(default_factory=list)
    removed: list[str] = field(default_factory=list)
    unchanged: int = 0
    notes: list[str] = field(default_factory=list)

    def summary(self) -> str:
        lines = [
            f"catalog: {len(self.added)} added, {len(self.changed)} changed, "
            f"{len(self.removed)} removed, {self.unchanged} unchanged"
        ]
        for label, names in (("added", self.added), ("changed", self.changed)):
            lines += [f"  {label}: {n}" for n in names]
        lines += [f"  removed: {n}" for n in self.removed]
        lines += [f"  note: {n}" for n in self.notes]
        return "\n".join(lines)


# ---- reading Backstage files -----------------------------------------------------------------


def ref_name(ref: str | None, default_kind: str = "group") -> str | None:
    """`group:default/x`, `group:x` and `x` -> `x`; users keep a `user:` prefix."""
    if not ref or not isinstance(ref, str):
        return None
    kind, _, rest = ref.rpartition(":")
    kind = (kind or default_kind).lower()
    name = rest.rpartition("/")[2].strip().lower()
    if not name:
        return None
    return f"user:{name}" if kind == "user" else name


def catalog_files(paths: Sequence[str | Path]) -> list[Path]:
    files: list[Path] = []
    for raw in paths:
        path = Path(raw)
        if path.is_dir():
            files += sorted(p for p in path.rglob("*") if p.suffix in (".yaml", ".yml"))
        elif path.exists():
            files.append(path)
        else:
            raise CatalogFileError(str(path), None, "no such file or directory")
    return files


def _key_line(node: yaml.Node, *keys: str) -> int:
    """The line of a nested key (or of the deepest part of it that exists)."""
    line = node.start_mark.line + 1
    for key in keys:
        if not isinstance(node, yaml.MappingNode):
            break
        match = next(((k, v) for k, v in node.value if k.value == key), None)
        if match is None:
            break
        line, node = match[0].start_mark.line + 1, match[1]
    return line


def read_entities(paths: Sequence[str | Path]) -> tuple[list[Entity], list[str]]:
    """Every entity in the files (multi-document YAML); raises CatalogFileError at the first fault."""
    entities: list[Entity] = []
    notes: list[str] = []
    seen: dict[tuple[str, str], str] = {}
    for path in catalog_files(paths):
        try:
            text = path.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            raise CatalogFileError(str(path), None, f"cannot read: {exc}") from None
        try:
            nodes = list(yaml.compose_all(text, Loader=yaml.SafeLoader))
        except yaml.YAMLError as exc:
            mark = getattr(exc, "problem_mark", None)
            problem = getattr(exc, "problem", None) or str(exc)
            line = mark.line + 1 if mark else None
            raise CatalogFileError(str(path), line, f"not valid YAML: {problem}") from None
        for node in nodes:
            if node is None:
                continue
            entity = _entity(path, node, notes)
            if entity is None:
                continue
            key = (entity.kind, entity.name)
            if key in seen:
                raise CatalogFileError(
                    str(path),
                    node.start_mark.line + 1,
                    f"{entity.kind} '{entity.name}' is also defined at {seen[key]}",
                )
            seen[key] = entity.source
            entities.append(entity)
    return entities, notes


def _entity(path: Path, node: yaml.Node, notes: list[str]) -> Entity | None:
    line = node.start_mark.line + 1
    source = f"{path}:{line}"
    data = yaml.SafeLoader("").construct_document(node)
    if not isinstance(data, dict):
        raise CatalogFileError(str(path), line, "an entity must be a mapping")
    api = data.get("apiVersion")
    if not isinstance(api, str) or not api.startswith("backstage.io/"):
        raise CatalogFileError(
            str(path), _key_line(node, "apiVersion"), "apiVersion must be backstage.io/v1alpha1"
        )
    kind = data.get("kind")
    if not isinstance(kind, str):
        raise CatalogFileError(str(path), _key_line(node, "kind"), "kind is required")
    metadata = data.get("metadata")
    if not isinstance(metadata, dict) or not isinstance(metadata.get("name"), str | int):
        raise CatalogFileError(
            str(path), _key_line(node, "metadata", "name"), "metadata.name is required"
        )
    name = str(metadata["name"]).strip().lower()
    if kind.lower() not in KINDS:
        notes.append(f"{source}: skipped {kind} '{name}' (opsbot reads {', '.join(KINDS)})")
        return None
    spec = data.get("spec") or {}
    if not isinstance(spec, dict):
        raise CatalogFileError(str(path), _key_line(node, "spec"), "spec must be a mapping")
    tags = metadata.get("tags") or []
    annotations = metadata.get("annotations") or {}
    if not isinstance(tags, list) or not all(isinstance(t, str | int) for t in tags):
        raise CatalogFileError(
            str(path), _key_line(node, "metadata", "tags"), "tags must be a list"
        )
    if not isinstance(annotations, dict):
        raise CatalogFileError(
            str(path), _key_line(node, "metadata", "annotations"), "annotations must be a mapping"
        )
    member_of = spec.get("memberOf") or []
    if not isinstance(member_of, list):
        raise CatalogFileError(
            str(path), _key_line(node, "spec", "memberOf"), "memberOf must be a list"
        )
    profile = spec.get("profile") or {}
    kind = kind.lower()
    if kind == "component" and not spec.get("owner"):
        raise CatalogFileError(
            str(path), _key_line(node, "spec", "owner"), f"component '{name}' needs spec.owner"
        )
    return Entity(
        kind=kind,
        name=name,
        source=source,
        title=metadata.get("title"),
        owner=ref_name(spec.get("owner")),
        system=ref_name(spec.get("system"), "system"),
        lifecycle=spec.get("lifecycle"),
        parent=ref_name(spec.get("parent")),
        email=(profile.get("email") or None) if isinstance(profile, dict) else None,
        tags=sorted({str(t).lower() for t in tags}),
        annotations={str(k): str(v) for k, v in annotations.items()},
        member_of=sorted({n for n in (ref_name(m) for m in member_of) if n}),
    )


# ---- storing --------------------------------------------------------------------------------


def import_catalog(session: Session, entities: Iterable[Entity], now: datetime) -> ImportResult:
    """Make the stored catalog equal to this import: add, update in place, remove the rest."""
    result = ImportResult()
    stored = {(e.kind, e.name): e for e in session.exec(select(CatalogEntity)).all()}
    incoming = {(e.kind, e.name): e for e in entities}
    for key, entity in incoming.items():
        values = {f: getattr(entity, f) for f in FIELDS} | {"member_of": entity.member_of}
        row = stored.get(key)
        label = f"{entity.kind} {entity.name}"
        if row is None:
            session.add(
                CatalogEntity(
                    kind=entity.kind,
                    name=entity.name,
                    source=entity.source,
                    imported_at=now,
                    **values,
                )
            )
            result.added.append(label)
            continue
        changed = [f for f, v in values.items() if getattr(row, f) != v]
        row.source, row.imported_at = entity.source, now
        if changed:
            for f in changed:
                setattr(row, f, values[f])
            result.changed.append(f"{label} ({', '.join(changed)})")
        else:
            result.unchanged += 1
    for key, row in stored.items():
        if key not in incoming:
            session.delete(row)
            result.removed.append(f"{row.kind} {row.name}")
    session.flush()
    return result


def services(session: Session) -> list[CatalogEntity]:
    return list(
        session.exec(
            select(CatalogEntity)
            .where(CatalogEntity.kind == "component")
            .order_by(CatalogEntity.name)
        ).all()
    )


def entity(session: Session, kind: str, name: str) -> CatalogEntity | None:
    return session.exec(
        select(CatalogEntity).where(CatalogEntity.kind == kind, CatalogEntity.name == name)
    ).first()


# ---- who owns what --------------------------------------------------------------------------


@dataclass
class Ownership:
    """Who to talk to about a service, and the config team answerable for it."""

    service: str
    owner: str | None  # the catalog's owner (group name or user:name)
    team_id: str | None
    people: list[str]  # Slack ids
    drifted: bool = False
    why: str = ""


def owner_of(
    session: Session, org: OrgConfig, directory: Directory, service: str, now: datetime
) -> Ownership:
    """The one answer to "who owns this service". When the owner no longer resolves to anyone,
    the owning team's managers stand in and the platform team is told once."""
    component = entity(session, "component", service)
    if component is None:
        found = Ownership(service, None, None, [], True, "it is not in the catalog")
        return _fallback(session, org, directory, found, now)
    owner = component.owner
    if owner is None and component.system:
        system = entity(session, "system", component.system)
        owner = system.owner if system else None
    team_id = _owning_team(session, org, owner, component)
    people: list[str] = []
    why = ""
    if owner and owner.startswith("user:"):
        user = entity(session, "user", owner[5:])
        people = _resolve(session, directory, [user.email] if user and user.email else [])
        why = f"user '{owner[5:]}' is no longer in the catalog or Slack"
    elif owner and _is_team(org, owner):
        team = org.team(owner)
        people = _resolve(session, directory, team.members)
        why = f"team '{owner}' has no members"
    elif owner:
        members = session.exec(select(CatalogEntity).where(CatalogEntity.kind == "user")).all()
        emails = [u.email for u in members if owner in u.member_of and u.email]
        people = _resolve(session, directory, emails)
        why = f"group '{owner}' has nobody who resolves to a Slack user"
    else:
        why = "it has no owner in the catalog"
    found = Ownership(service, owner, team_id, people, not people, "" if people else why)
    return _fallback(session, org, directory, found, now) if found.drifted else found


def _is_team(org: OrgConfig, name: str | None) -> bool:
    return bool(name) and any(t.id == name for t in org.teams)


def _owning_team(
    session: Session, org: OrgConfig, owner: str | None, component: CatalogEntity
) -> str | None:
    """The config team answerable for a service: the owner itself, its parent groups, the
    groups a user owner belongs to, or the team owning the service's system."""
    found = _team_above(session, org, owner)
    if found is None and component.system:
        system = entity(session, "system", component.system)
        found = _team_above(session, org, system.owner if system else None)
    return found


def _team_above(session: Session, org: OrgConfig, owner: str | None) -> str | None:
    queue = [owner] if owner else []
    if owner and owner.startswith("user:"):
        user = entity(session, "user", owner[5:])
        queue = list(user.member_of) if user else []
    seen: set[str] = set()
    while queue:
        name = queue.pop(0)
        if name in seen:
            continue
        seen.add(name)
        if _is_team(org, name):
            return name
        group = entity(session, "group", name)
        if group and group.parent:
            queue.append(group.parent)
    return None


def _resolve(session: Session, directory: Directory, refs: Iterable[str]) -> list[str]:
    """Slack ids for config references or e-mails; those that resolve to nobody drop out."""
    found: list[str] = []
    for ref in refs:
        user_id = directory.user_id(ref, session)
        if "@" not in user_id and user_id not in found:
            found.append(user_id)
    return found


def _fallback(
    session: Session, org: OrgConfig, directory: Directory, found: Ownership, now: datetime
) -> Ownership:
    platform = org.platform_migrations.platform_team
    team_id = found.team_id or platform
    managers = _resolve(session, directory, org.team(team_id).managers) if team_id else []
    if not managers and platform and platform != team_id:
        managers = _resolve(session, directory, org.team(platform).managers)
    found.people = managers
    tell_drift(session, org, found, now)
    return found


def tell_drift(session: Session, org: OrgConfig, found: Ownership, now: datetime) -> None:
    """The platform team hears once per service and owner that ownership has drifted."""
    platform = org.platform_migrations.platform_team
    if not platform:
        return
    team = org.team(platform)
    where = team.channel or (team.managers[0] if team.managers else None)
    if where is None:
        return
    standing_in = ", ".join(f"<@{p}>" for p in found.people) or "nobody"
    text = (
        f":compass: Ownership drift: *{escape(found.service)}* has no reachable owner "
        f"({escape(found.why)}). Until the catalog is fixed, {standing_in} "
        "receives its migration notices. Update `spec.owner` in its catalog-info.yaml."
    )
    outbox.post(session, f"migration:drift:{found.service}:{found.owner}", where, text, now)


def describe(session: Session, service: str) -> dict[str, Any]:
    """A service's catalog facts for notices: title, system, tags."""
    component = entity(session, "component", service)
    if component is None:
        return {"name": service}
    return {
        "name": service,
        "title": component.title,
        "system": component.system,
        "tags": component.tags,
    }


def team_of_service(session: Session, org: OrgConfig, service: str) -> str | None:
    """The config team answerable for a service (no Slack lookups), e.g. for pilots and overlap."""
    component = entity(session, "component", service)
    if component is None:
        return None
    owner = component.owner
    if owner is None and component.system:
        system = entity(session, "system", component.system)
        owner = system.owner if system else None
    return _owning_team(session, org, owner, component)
