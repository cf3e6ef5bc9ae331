"""The STAR entry's gentle checks (never blocking) and its one hard rule about naming teams."""

from __future__ import annotations

import pytest

from bot.errors import InvalidInput
from bot.wins.checks import Draft, problems, require_valid, unexpanded_acronyms, warnings


def draft(**kw) -> Draft:
    base = dict(
        team_id="infra",
        kind="win",
        summary="Builds are twice as fast",
        situation="Builds took 20 minutes.",
        action="We cached dependencies.",
        result="Builds take 9 minutes; 40 engineer-hours saved a week.",
    )
    base.update(kw)
    return Draft(**base)


def test_a_good_entry_has_no_warnings():
    assert warnings(draft()) == {}
    assert problems(draft()) == {}


def test_a_result_without_a_number_is_flagged_gently():
    assert "number" in warnings(draft(result="Builds are much faster."))["result"]


def test_an_acronym_not_expanded_anywhere_is_flagged():
    found = warnings(draft(situation="The SLO for the CDN was missed."))
    assert "SLO" in found["situation"] and "CDN" in found["situation"]


@pytest.mark.parametrize(
    "text",
    [
        "The SLO (service level objective) was met.",
        "The service level objective (SLO) was met.",
        "Our SLOs (service level objectives) were met.",
    ],
)
def test_an_acronym_expanded_somewhere_in_the_entry_is_fine(text):
    assert unexpanded_acronyms(text + " We kept the SLO.") == []


def test_a_summary_longer_than_a_line_is_flagged():
    assert "one line" in warnings(draft(summary="x" * 140))["summary"]


def test_a_shareable_challenge_naming_a_team_needs_to_be_raised_first():
    challenge = draft(kind="challenge", visibility="shareable", names_team="data")
    assert "raised" in problems(challenge)
    with pytest.raises(InvalidInput, match="leadership"):
        require_valid(challenge)
    assert problems(draft(kind="challenge", visibility="internal", names_team="data")) == {}
    raised = draft(
        kind="challenge", visibility="shareable", names_team="data", raised_with_leadership=True
    )
    assert problems(raised) == {}


def test_empty_parts_are_refused():
    assert set(problems(draft(summary=" ", action=""))) == {"summary", "action"}
