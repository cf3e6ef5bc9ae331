"""Runbook search: the Markdown runbooks in `runbooks/` indexed by title, keywords and body, ranked with BM25."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

import frontmatter

from bot.support.bm25 import BM25, tokenize

log = logging.getLogger(__name__)

# A title or keyword says more about what a runbook is for than a word in its body.
TITLE_WEIGHT = 3
KEYWORD_WEIGHT = 2
# Below this a "match" is one common word; offering it would teach people to ignore suggestions.
MINIMUM_SCORE = 1.0
RELATIVE_CUTOFF = 0.5  # of the best match's score


@dataclass(frozen=True)
class Runbook:
    slug: str
    title: str
    keywords: tuple[str, ...]
    owner_team: str | None
    body: str
    path: Path
    url: str | None = None

    @property
    def excerpt(self) -> str:
        """The first paragraph of prose, shortened: enough to tell whether it is the right one."""
        for paragraph in self.body.split("\n\n"):
            text = " ".join(
                line.strip() for line in paragraph.splitlines() if not line.startswith("#")
            ).strip()
            if text:
                return text if len(text) <= 280 else text[:277].rstrip() + "..."
        return ""


@dataclass(frozen=True)
class RunbookMatch:
    runbook: Runbook
    score: float


def default_runbooks_dir() -> Path:
    """runbooks/ beside the package in a checkout, else in the working directory (Docker)."""
    beside = Path(__file__).resolve().parents[2] / "runbooks"
    return beside if beside.is_dir() else Path.cwd() / "runbooks"


def load_runbooks(directory: Path) -> list[Runbook]:
    runbooks = []
    for path in sorted(directory.glob("*.md")):
        if path.name.lower() == "readme.md":
            continue
        try:
            post = frontmatter.load(str(path))
        except Exception as exc:  # a broken file must not hide the others
            log.warning("skipping runbook %s: %s", path, exc)
            continue
        keywords = post.get("keywords") or []
        if isinstance(keywords, str):
            keywords = [k.strip() for k in keywords.split(",")]
        runbooks.append(
            Runbook(
                slug=path.stem,
                title=str(post.get("title") or path.stem.replace("-", " ")),
                keywords=tuple(str(k) for k in keywords if str(k).strip()),
                owner_team=post.get("owner_team"),
                body=post.content,
                path=path,
                url=str(post["url"]) if post.get("url") else None,
            )
        )
    return runbooks


class RunbookIndex:
    """BM25 over the runbooks in a directory; rebuilt when a file there changes."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self._signature: tuple = ()
        self._runbooks: list[Runbook] = []
        self._bm25 = BM25([])

    def _refresh(self) -> None:
        files = sorted(self.directory.glob("*.md")) if self.directory.is_dir() else []
        signature = tuple((p.name, p.stat().st_mtime_ns, p.stat().st_size) for p in files)
        if signature == self._signature:
            return
        self._runbooks = load_runbooks(self.directory) if files else []
        self._bm25 = BM25([document_terms(r) for r in self._runbooks])
        self._signature = signature

    @property
    def runbooks(self) -> list[Runbook]:
        self._refresh()
        return list(self._runbooks)

    def get(self, slug: str) -> Runbook | None:
        return next((r for r in self.runbooks if r.slug == slug), None)

    def search(self, text: str, limit: int = 3) -> list[RunbookMatch]:
        self._refresh()
        hits = self._bm25.rank(tokenize(text), limit=limit, minimum=MINIMUM_SCORE)
        # Far weaker runner-ups only distract from the one that fits.
        hits = [h for h in hits if h.score >= RELATIVE_CUTOFF * hits[0].score]
        return [RunbookMatch(self._runbooks[h.index], round(h.score, 3)) for h in hits]


def document_terms(runbook: Runbook) -> list[str]:
    return (
        tokenize(runbook.title) * TITLE_WEIGHT
        + tokenize(" ".join(runbook.keywords)) * KEYWORD_WEIGHT
        + tokenize(runbook.body)
    )
