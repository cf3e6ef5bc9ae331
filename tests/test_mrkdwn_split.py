"""Long mrkdwn is split for Slack's 3,000-character text limit at line boundaries, never inside
a token, an entity or a word, so a long schedule or timeline loses nothing and breaks nothing."""

import re

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bot.mrkdwn import split_lines

TOKEN = re.compile(r"<[^<>\n]*>")
# A word as a reader sees it: a Slack token with spaces in its label is one word.
WORD = re.compile(r"(?:<[^<>\n]*>|\S)+")


def test_short_text_is_one_chunk_unchanged():
    assert split_lines("*Timeline*\n• 03:00 paged Alice") == ["*Timeline*\n• 03:00 paged Alice"]


def test_empty_or_blank_text_gives_no_chunks():
    assert split_lines("") == []
    assert split_lines("\n  \n") == []


def test_lines_are_packed_in_order_and_never_cut():
    lines = [
        f"week {n}: <!date^{1700000000 + n}^{{date_short}}|Nov {n}> <@U{n:04d}>" for n in range(200)
    ]
    chunks = split_lines("\n".join(lines), limit=500)
    assert len(chunks) > 1
    assert all(len(chunk) <= 500 for chunk in chunks)
    assert [line for chunk in chunks for line in chunk.split("\n")] == lines


def test_a_date_token_at_the_limit_moves_whole_to_the_next_chunk():
    token = "<!date^1700000000^{date_short_pretty} {time}|Nov 14, 22:13 UTC>"
    text = "x" * 40 + "\n" + token
    chunks = split_lines(text, limit=len(token) + 5)
    assert chunks == ["x" * 40, token]


def test_an_overlong_line_breaks_at_spaces_outside_tokens():
    link = "<https://runbooks.example.com/db|the database failover runbook>"
    line = " ".join([link] * 6)
    chunks = split_lines(line, limit=len(link) * 2 + 1)
    assert chunks == [f"{link} {link}"] * 3


def test_entities_are_not_cut_when_a_word_must_be_cut():
    word = "R&amp;D" * 10
    chunks = split_lines(word, limit=9)
    assert "".join(chunk.replace("\n", "") for chunk in chunks) == word
    for piece in "\n".join(chunks).split("\n"):
        assert len(piece) <= 9
        assert not re.search(r"&[a-z]*$", piece) or piece.endswith(";")


def test_a_blank_line_at_a_chunk_boundary_is_not_sent_as_a_blank_message():
    assert split_lines("a" * 10 + "\n\n" + "b" * 10, limit=10) == ["a" * 10, "b" * 10]


def test_limit_must_be_positive():
    with pytest.raises(ValueError):
        split_lines("text", limit=0)


# Words, entities, tokens with spaces, blank lines and runs of spaces: the texts we send.
_piece = st.one_of(
    st.text(alphabet="abcdefghij*_~`•:", min_size=1, max_size=30),
    st.sampled_from(
        [
            "&amp;",
            "&lt;",
            "&gt;",
            "<@U12345>",
            "<!here>",
            "<!date^1700000000^{time}|22:13>",
            "<https://example.com/a|a link with words>",
            "<#C999|ops>",
        ]
    ),
)
_line = st.lists(st.tuples(_piece, st.sampled_from([" ", "  ", "\t", ""])), max_size=40).map(
    lambda parts: "".join(word + gap for word, gap in parts)
)
_text = st.lists(_line, min_size=1, max_size=30).map("\n".join)


@settings(max_examples=300, deadline=None)
@given(text=_text, limit=st.integers(min_value=60, max_value=400))
def test_every_chunk_fits_and_nothing_is_lost_or_cut(text, limit):
    chunks = split_lines(text, limit)
    assert all(chunk.strip() and len(chunk) <= limit for chunk in chunks)
    # Nothing is lost or reordered; no word is cut unless it alone is longer than a chunk.
    assert "".join("\n".join(chunks).split()) == "".join(text.split())
    if all(len(word) <= limit for word in WORD.findall(text)):
        assert WORD.findall("\n".join(chunks)) == WORD.findall(text)
    # Every Slack token survives whole in one chunk (each is shorter than the limit here).
    assert [t for chunk in chunks for t in TOKEN.findall(chunk)] == TOKEN.findall(text)
    # When every line fits, the chunks hold the text's lines unchanged, in order (blank lines
    # at a chunk boundary may go: Slack refuses a blank message).
    if all(len(line) <= limit for line in text.split("\n")):
        lines = [line for chunk in chunks for line in chunk.split("\n")]
        assert [line for line in lines if line.strip()] == [
            line for line in text.split("\n") if line.strip()
        ]
