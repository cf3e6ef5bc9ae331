"""Escaping user text for Slack mrkdwn, so nobody can trigger @channel or spoof a link through the bot."""

from __future__ import annotations

import re


def escape(text: object) -> str:
    """Escape the three characters Slack treats as control characters in mrkdwn."""
    return str(text).replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def user(user_id: str) -> str:
    """A mention of a person we resolved ourselves (a Slack id, never free user text)."""
    return f"<@{escape(user_id)}>"


def link(url: str, label: str) -> str:
    """A link whose label is user text: escape it, and strip the pipe that would end the label."""
    return f"<{escape(url)}|{escape(label).replace('|', '¦')}>"


def quote(text: str) -> str:
    return "\n".join("> " + line for line in escape(text).splitlines() or [""])


# A "word" is a run of non-space characters in which a Slack token (`<@U1>`, `<!date^…|…>`,
# `<https://x|a label>`) counts as one piece even when it holds spaces; an entity (`&amp;`) has
# no spaces, so it always stays inside its word.
_WORD = re.compile(r"(?:<[^<>\n]*>|\S)+")
# The smallest pieces a word may be cut between when it alone is longer than the limit.
_ATOM = re.compile(r"<[^<>\n]*>|&(?:[A-Za-z]+|#\d+);|.", re.DOTALL)


def split_lines(text: str, limit: int = 3000) -> list[str]:
    """Split mrkdwn into chunks of at most `limit` characters, each made of whole lines.

    Lines are packed in order; a line longer than `limit` is broken at whitespace outside Slack
    tokens (the whitespace at the break becomes the line break). A single word or token longer
    than `limit` is the one thing cut inside, between entities and tokens when it can be.
    A chunk would be blank only when blank lines meet a chunk boundary; Slack refuses blank
    text, and a blank line between two messages says nothing, so such chunks are left out.
    """
    if limit < 1:
        raise ValueError("limit must be at least 1")
    chunks: list[str] = []
    current: str | None = None
    for line in text.split("\n"):
        for piece in _fit_line(line, limit):
            if current is not None and len(current) + 1 + len(piece) <= limit:
                current += "\n" + piece
            else:
                if current is not None:
                    chunks.append(current)
                current = piece
    if current is not None:
        chunks.append(current)
    return [chunk for chunk in chunks if chunk.strip()]


def _fit_line(line: str, limit: int) -> list[str]:
    """The line itself when it fits, else pieces of it broken between words."""
    if len(line) <= limit:
        return [line]
    pieces: list[str] = []
    start = end = None  # the span of `line` the current piece covers
    for match in _WORD.finditer(line):
        if start is not None and match.end() - start <= limit:
            end = match.end()
            continue
        if start is not None:
            pieces.append(line[start:end])
        if match.end() - match.start() <= limit:
            start, end = match.start(), match.end()
        else:
            *whole, last = _cut_word(match.group(), limit)
            pieces.extend(whole)
            start, end = match.end() - len(last), match.end()
    if start is not None:
        pieces.append(line[start:end])
    return pieces


def _cut_word(word: str, limit: int) -> list[str]:
    """Cut a word longer than the limit between its atoms (raw only inside an over-long token)."""
    pieces: list[str] = []
    current = ""
    for atom in _ATOM.findall(word):
        while len(atom) > limit:  # a token longer than a whole chunk: nothing else to do
            if current:
                pieces.append(current)
                current = ""
            pieces.append(atom[:limit])
            atom = atom[limit:]
        if len(current) + len(atom) > limit:
            pieces.append(current)
            current = ""
        current += atom
    if current:
        pieces.append(current)
    return pieces
