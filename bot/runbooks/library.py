"""The runbook library: Markdown files with YAML front matter, checked, indexed and ranked with BM25.

One index per runtime answers every runbook question: which runbook an alert names
(`for_alert`), which runbooks read like a request (`search`), which one belongs on a page without
an alert name (`for_text`). It re-reads the directory when a file there changes, so an edited
runbook needs no restart.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import frontmatter
import yaml

from bot.runbooks.bm25 import BM25, tokenize

if TYPE_CHECKING:
    from bot.runtime import Runtime

log = logging.getLogger(__name__)

RUNTIME_KEY = "runbooks"  # runtime.extras key of the shared index
# A title or keyword says more about what a runbook is for than a word in its body.
TITLE_WEIGHT = 3
KEYWORD_WEIGHT = 2
# Below this a "match" is one common word; offering it would teach people to ignore suggestions.
MINIMUM_SCORE = 1.0
RELATIVE_CUTOFF = 0.5  # of the best match's score
EXCERPT_LIMIT = 280


class InvalidRunbook(ValueError):
    """A runbook file whose front matter cannot be used; the message says what to fix."""


@dataclass(frozen=True)
class Runbook:
    slug: str  # the file name without .md; how pages and tickets refer to it
    title: str
    alerts: tuple[str, ...] = ()
    keywords: tuple[str, ...] = ()
    owner_team: str | None = None
    url: str | None = None
    body: str = ""

    @property
    def file_name(self) -> str:
        return f"{self.slug}.md"

    @property
    def excerpt(self) -> str:
        """The first paragraph of prose, shortened: enough to tell whether it is the right one."""
        for paragraph in self.body.split("\n\n"):
            text = " ".join(
                line.strip() for line in paragraph.splitlines() if not line.startswith("#")
            ).strip()
            if text:
                if len(text) <= EXCERPT_LIMIT:
                    return text
                return text[: EXCERPT_LIMIT - 3].rstrip() + "..."
        return ""


@dataclass(frozen=True)
class RunbookMatch:
    runbook: Runbook
    score: float


def parse_runbook(slug: str, text: str) -> Runbook:
    """A runbook from a file's text; `InvalidRunbook` says why it cannot be used."""
    try:
        post = frontmatter.loads(text)
    except yaml.YAMLError as exc:
        raise InvalidRunbook(f"front matter is not valid YAML ({exc})") from exc
    meta = post.metadata
    title = meta.get("title")
    if not isinstance(title, str) or not title.strip():
        raise InvalidRunbook("front matter needs a title")
    alerts = _names(meta.get("alerts"), "alerts")
    keywords = _names(meta.get("keywords"), "keywords")
    if not alerts and not keywords:
        raise InvalidRunbook(
            "front matter needs alerts or keywords, or no page or request will ever find it"
        )
    owner = meta.get("owner_team")
    url = meta.get("url")
    return Runbook(
        slug=slug,
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
    if isinstance(value, str):  # "disk, volume" reads as two keywords
        value = value.split(",")
    if not isinstance(value, list) or not all(isinstance(v, str | int) for v in value):
        raise InvalidRunbook(f"{key} must be a list of names")
    return tuple(str(v).strip() for v in value if str(v).strip())


def runbook_files(directory: Path) -> list[Path]:
    """The runbook files in a directory, in name order; a README there is not a runbook."""
    if not directory.is_dir():
        return []
    return [p for p in sorted(directory.glob("*.md")) if p.name.lower() != "readme.md"]


def runbooks_dir() -> Path:
    """runbooks/ beside the package in a checkout, else ./runbooks (a container's WORKDIR, or
    the operator's own), else the examples the installed package ships (bot/_runbooks)."""
    package = Path(__file__).resolve().parents[1]
    for candidate in (package.parent / "runbooks", Path.cwd() / "runbooks"):
        if candidate.is_dir():
            return candidate
    return package / "_runbooks"


@dataclass(frozen=True)
class _Shelf:
    """What the directory held at one moment; replaced whole, so readers never see half a reload."""

    signature: tuple = ()
    runbooks: tuple[Runbook, ...] = ()
    problems: tuple[str, ...] = ()
    bm25: BM25 = field(default_factory=lambda: BM25([]))


def _load(files: list[Path], signature: tuple) -> _Shelf:
    runbooks, problems = [], []
    for path in files:
        try:
            runbooks.append(parse_runbook(path.stem, path.read_text(encoding="utf-8")))
        except (InvalidRunbook, OSError, UnicodeDecodeError) as exc:
            # A broken file must not hide the others; it is reported instead.
            problems.append(f"{path.name}: {exc}")
            log.warning("skipping runbook %s: %s", path, exc)
    return _Shelf(
        signature=signature,
        runbooks=tuple(runbooks),
        problems=tuple(problems),
        bm25=BM25([document_terms(r) for r in runbooks]),
    )


def _version(path: Path) -> tuple[int, int]:
    stat = path.stat()
    return stat.st_mtime_ns, stat.st_size


def document_terms(runbook: Runbook) -> list[str]:
    return (
        tokenize(runbook.title) * TITLE_WEIGHT
        + tokenize(" ".join(runbook.keywords)) * KEYWORD_WEIGHT
        + tokenize(runbook.body)
    )


class RunbookIndex:
    """The runbooks of one directory; re-read when a file there is added, changed or removed."""

    def __init__(self, directory: Path) -> None:
        self.directory = Path(directory)
        self._shelf = _Shelf(signature=("not loaded",))

    def _current(self) -> _Shelf:
        files = runbook_files(self.directory)
        try:
            signature = tuple((p.name, *_version(p)) for p in files)
        except OSError:  # a file removed between listing and stat: read again next time
            signature = ("changing",)
        shelf = self._shelf
        if signature != shelf.signature:
            shelf = self._shelf = _load(files, signature)
        return shelf

    @property
    def runbooks(self) -> list[Runbook]:
        return list(self._current().runbooks)

    @property
    def problems(self) -> list[str]:
        """Files skipped, and why (`name.md: front matter needs a title`)."""
        return list(self._current().problems)

    def get(self, slug: str | None) -> Runbook | None:
        if not slug:
            return None
        return next((r for r in self._current().runbooks if r.slug == slug), None)

    def for_alert(self, alert_name: str | None) -> Runbook | None:
        """The runbook whose front matter lists this alert name (case matters, as in Prometheus)."""
        if not alert_name:
            return None
        return next((r for r in self._current().runbooks if alert_name in r.alerts), None)

    def search(self, text: str, limit: int = 3) -> list[RunbookMatch]:
        """Runbooks that read like the text, best first: BM25 over title (x3), keywords (x2) and
        body; matches under MINIMUM_SCORE or under half the best one's score are left out."""
        shelf = self._current()
        hits = shelf.bm25.rank(tokenize(text), limit=limit, minimum=MINIMUM_SCORE)
        # Far weaker runner-ups only distract from the one that fits.
        hits = [h for h in hits if h.score >= RELATIVE_CUTOFF * hits[0].score]
        return [RunbookMatch(shelf.runbooks[h.index], round(h.score, 3)) for h in hits]

    def about(self, text: str, limit: int = 3) -> list[RunbookMatch]:
        """Search matches the text is about: it names a word of the runbook's title or keywords.
        A word shared only with a body ("team", "every", "return") is not enough to offer a
        runbook as an answer, on a page or on a support ticket."""
        words = set(tokenize(text))
        return [
            match
            for match in self.search(text, limit=max(limit, 5))
            if words
            & (set(tokenize(match.runbook.title)) | set(tokenize(" ".join(match.runbook.keywords))))
        ][:limit]

    def for_text(self, text: str) -> Runbook | None:
        """For pages without an alert name: the best match the text is about (`about`),
        preferring operational runbooks (those that answer alerts) over how-to guides."""
        about = [match.runbook for match in self.about(text, limit=5)]
        operational = [runbook for runbook in about if runbook.alerts]
        return (operational or about or [None])[0]

    def find(self, alert_name: str | None, text: str) -> Runbook | None:
        """The runbook for a page: the one naming its alert, else the one its text is about."""
        return self.for_alert(alert_name) or self.for_text(text)


def runbook_index(runtime: Runtime) -> RunbookIndex:
    """The runtime's one index over `runbooks_dir()`, made on first use."""
    index = runtime.extras.get(RUNTIME_KEY)
    if index is None:
        index = runtime.extras[RUNTIME_KEY] = RunbookIndex(runbooks_dir())
    return index
