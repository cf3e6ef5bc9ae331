"""Escaping user text for Slack mrkdwn, so nobody can trigger @channel or spoof a link through the bot."""

from __future__ import annotations

import re
from datetime import datetime

from bot.clock import as_utc


def escape(text: object) -> str:
    """Escape the three characters Slack treats as control characters in mrkdwn."""
    return str(text).replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


# Broadcasts and group mentions, with or without a label: `<!here>`, `<!channel|@channel>`,
# `<!subteam^S0123|@infra>`.
_BROADCAST = re.compile(r"<!(channel|here|everyone|subteam\^[^|>]*)(?:\|([^>]*))?>")


def from_event(text: object) -> str:
    """Text Slack sent in an event (a message, a shortcut's message): it is mrkdwn already, with
    `&`, `<`, `>` encoded and mentions and links as tokens, so it passes through as it is. Only
    what would notify a whole channel or group when the bot repeats it is neutralised, to its
    plain label (`<!here>` -> `@here`, `<!subteam^S1|@infra>` -> `@infra`)."""

    def plain(match: re.Match[str]) -> str:
        name, label = match.group(1), match.group(2)
        if label:
            return label if label.startswith("@") else f"@{label}"
        return "@group" if name.startswith("subteam") else f"@{name}"

    return _BROADCAST.sub(plain, str(text))


_TOKEN = re.compile(r"<([^<>|]*)(?:\|([^<>]*))?>")


def to_plain(text: str) -> str:
    """Readable plain text of mrkdwn, for search, modal inputs and re-escaping elsewhere:
    tokens become their labels (a link without one its address), entities their characters."""

    def label(match: re.Match[str]) -> str:
        target, shown = match.group(1), match.group(2)
        if shown:
            sigil = target[:1] if target[:1] in "@#" else ""
            return shown if shown.startswith(sigil) else sigil + shown
        if target[:1] in "@#":
            return target
        if target.startswith("!"):
            return "@" + target[1:].split("^")[0]
        return target

    plain = _TOKEN.sub(label, text)
    return plain.replace("&lt;", "<").replace("&gt;", ">").replace("&amp;", "&")


def date(instant: datetime, fallback: str, token: str = "{date_short_pretty} {time}") -> str:
    """A Slack date token: each reader sees `instant` in their own zone; clients that cannot
    render it show `fallback` (the time in the team's zone, with its zone label)."""
    # as_utc: a naive datetime read back from SQLite is UTC, not the machine's local time.
    return f"<!date^{int(as_utc(instant).timestamp())}^{token}|{escape(fallback)}>"


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
