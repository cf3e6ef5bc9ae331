"""The gentle checks on an entry (never blocking) and the rules that do block (pure functions).

The book: start with a short bolded summary; numbers are your friends; expand acronyms for the
audience. A challenge that names another team is shared only once raised with its leadership.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from bot.errors import InvalidInput
from bot.wins.models import CHALLENGE, INTERNAL, SHAREABLE, WIN

SUMMARY_LINE = 100  # about one line of a digest
_ACRONYM = re.compile(r"\b([A-Z][A-Z0-9]+)s?\b")
# Acronyms every reader knows; flagging them would teach people to ignore the check.
_COMMON = {
    "OK",
    "US",
    "UK",
    "EU",
    "AM",
    "PM",
    "CEO",
    "CTO",
    "VP",
    "API",
    "URL",
    "ID",
    "IT",
    "Q1",
    "Q2",
    "Q3",
    "Q4",
    "TV",
    "PR",
    "AI",
    "HR",
    "FAQ",
}


@dataclass(frozen=True)
class Draft:
    team_id: str
    kind: str
    summary: str
    situation: str
    action: str
    result: str
    visibility: str = SHAREABLE
    names_team: str | None = None
    raised_with_leadership: bool = False

    @property
    def text(self) -> str:
        return "\n".join((self.summary, self.situation, self.action, self.result))


def problems(draft: Draft) -> dict[str, str]:
    """What must change before the entry can be saved, by form field."""
    found: dict[str, str] = {}
    if draft.kind not in (WIN, CHALLENGE):
        found["kind"] = "Pick win or challenge."
    if not draft.summary.strip():
        found["summary"] = "Start with a short summary: it is what people scan."
    for key in ("situation", "action", "result"):
        if not getattr(draft, key).strip():
            found[key] = f"Say a sentence about the {key}."
    if draft.visibility not in (INTERNAL, SHAREABLE):
        found["visibility"] = "Pick internal or shareable."
    if (
        draft.kind == CHALLENGE
        and draft.visibility == SHAREABLE
        and draft.names_team
        and not draft.raised_with_leadership
    ):
        found["raised"] = (
            "A challenge that names another team is shared only once you have raised it with "
            "that team's leadership: tick the box, or keep it internal."
        )
    return found


def require_valid(draft: Draft) -> None:
    found = problems(draft)
    if found:
        raise InvalidInput(" ".join(found.values()))


def unexpanded_acronyms(text: str) -> list[str]:
    """All-caps words not expanded anywhere in the text ("SLO (service level objective)" or
    "service level objective (SLO)" counts as expanded)."""
    found = []
    for word in dict.fromkeys(m.group(1) for m in _ACRONYM.finditer(text)):
        if word in _COMMON or word.isdigit() or not any(c.isalpha() for c in word):
            continue
        expanded_after = re.search(rf"\b{re.escape(word)}s?\s*\([^)]{{3,}}\)", text)
        expanded_before = re.search(rf"\([^)]*\b{re.escape(word)}s?\)", text)
        if not expanded_after and not expanded_before:
            found.append(word)
    return found


def warnings(draft: Draft) -> dict[str, str]:
    """Gentle checks, by form field: shown once, and the writer may keep the entry as it is."""
    found: dict[str, str] = {}
    if len(draft.summary.strip()) > SUMMARY_LINE:
        found["summary"] = (
            f"The summary is {len(draft.summary.strip())} characters; one line "
            f"(up to {SUMMARY_LINE}) scans best."
        )
    if draft.result.strip() and not re.search(r"\d", draft.result):
        found["result"] = "No number in the result: can you show the change with one?"
    acronyms = unexpanded_acronyms(draft.text)
    if acronyms:
        listed = ", ".join(acronyms[:5])
        found["situation" if "situation" not in found else "action"] = (
            f"Expand {listed} somewhere in the entry for readers outside the team."
        )
    return found
