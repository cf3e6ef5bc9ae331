"""Runbooks: Markdown files in runbooks/ whose YAML front matter names the alerts they answer."""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass, field
from pathlib import Path

import frontmatter
import yaml

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Runbook:
    name: str  # the file name without .md; how a page refers to it
    title: str
    alerts: tuple[str, ...] = ()
    keywords: tuple[str, ...] = ()
    owner_team: str | None = None
    url: str | None = None
    body: str = ""


@dataclass
class RunbookIndex:
    runbooks: dict[str, Runbook] = field(default_factory=dict)
    problems: list[str] = field(default_factory=list)  # files skipped, and why

    @classmethod
    def load(cls, directory: Path | None) -> RunbookIndex:
        index = cls()
        if directory is None or not directory.is_dir():
            return index
        for path in sorted(directory.glob("*.md")):
            if path.name.lower() == "readme.md":
                continue
            try:
                index.add(parse_runbook(path.stem, path.read_text(encoding="utf-8")))
            except (ValueError, OSError, yaml.YAMLError) as exc:
                index.problems.append(f"{path.name}: {exc}")
                log.warning("skipping runbook %s: %s", path.name, exc)
        return index

    def add(self, runbook: Runbook) -> None:
        self.runbooks[runbook.name] = runbook

    def get(self, name: str | None) -> Runbook | None:
        return self.runbooks.get(name) if name else None

    def for_alert(self, alert_name: str | None) -> Runbook | None:
        """The runbook whose front matter lists this alert name (case matters, as in Prometheus)."""
        if not alert_name:
            return None
        return next((r for r in self.runbooks.values() if alert_name in r.alerts), None)

    def for_text(self, text: str) -> Runbook | None:
        """For pages without an alert name: the runbook with the most keywords in the text."""
        words = set(re.findall(r"[a-z0-9][a-z0-9_.-]*", text.lower()))
        best, best_score = None, 0
        for runbook in self.runbooks.values():
            score = sum(1 for k in runbook.keywords if _keyword_in(k.lower(), words, text.lower()))
            if score > best_score:
                best, best_score = runbook, score
        return best

    def find(self, alert_name: str | None, text: str) -> Runbook | None:
        return self.for_alert(alert_name) or self.for_text(text)


def _keyword_in(keyword: str, words: set[str], text: str) -> bool:
    return keyword in words if " " not in keyword else keyword in text


def parse_runbook(name: str, text: str) -> Runbook:
    post = frontmatter.loads(text)
    meta = post.metadata
    title = meta.get("title")
    if not isinstance(title, str) or not title.strip():
        raise ValueError("front matter needs a title")
    alerts = _names(meta.get("alerts"), "alerts")
    keywords = _names(meta.get("keywords"), "keywords")
    if not alerts and not keywords:
        raise ValueError("front matter needs alerts or keywords, or no page will ever find it")
    owner = meta.get("owner_team")
    url = meta.get("url")
    return Runbook(
        name=name,
        title=title.strip(),
        alerts=alerts,
        keywords=keywords,
        owner_team=str(owner) if owner else None,
        url=str(url) if url else None,
        body=post.content.strip(),
    )


def _names(value: object, key: str) -> tuple[str, ...]:
    if value is None:
        return ()
    if isinstance(value, str):
        value = [value]
    if not isinstance(value, list) or not all(isinstance(v, str | int) for v in value):
        raise ValueError(f"{key} must be a list of names")
    return tuple(str(v).strip() for v in value if str(v).strip())


def runbooks_dir() -> Path | None:
    """runbooks/ beside the package in a checkout, else ./runbooks (a container's WORKDIR)."""
    for candidate in (Path(__file__).resolve().parents[2] / "runbooks", Path.cwd() / "runbooks"):
        if candidate.is_dir():
            return candidate
    return None
