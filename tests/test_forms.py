"""bot.forms decodes form bodies exactly as urllib.parse does, whichever way it takes."""

from __future__ import annotations

import json
from urllib.parse import parse_qsl, quote, unquote_plus, urlencode

from hypothesis import given, settings
from hypothesis import strategies as st

from bot import forms
from bot.intake import parse_body

# The characters on which quoted-printable and percent-decoding could part: escapes, their
# digits, quoted-printable's own escape and soft line breaks, form separators, non-ASCII.
TRICKY = st.text(alphabet="%=+&3DdAaFfgz0 \r\n\t_é€\x00", max_size=40)


@settings(max_examples=400, deadline=None)
@given(st.one_of(TRICKY, st.text(max_size=60)))
def test_unquote_plus_is_the_standard_librarys_on_any_text(text):
    assert forms.unquote_plus(text) == unquote_plus(text)


@settings(max_examples=300, deadline=None)
@given(st.text(max_size=60))
def test_unquote_plus_reverses_quoting(text):
    for quoted in (quote(text, safe=""), quote(text, safe="=/:"), quote(text).lower()):
        assert forms.unquote_plus(quoted) == unquote_plus(quoted)
    assert forms.unquote_plus(quote(text, safe="")) == text


@settings(max_examples=300, deadline=None)
@given(st.one_of(TRICKY, st.lists(st.tuples(st.text(), st.text())).map(urlencode)))
def test_parse_form_is_parse_qsl_keeping_blank_values(text):
    assert forms.parse_form(text) == parse_qsl(text, keep_blank_values=True)


def test_an_interaction_payload_takes_the_fast_way_and_decodes_whole():
    payload = {"type": "block_actions", "text": "50% done = <ok> & “quoted” +1 ✓"}
    body = urlencode({"payload": json.dumps(payload)})
    assert forms._plain(body)  # the binascii way
    assert parse_body(body.encode(), "application/x-www-form-urlencoded") == payload


def test_a_slash_command_with_a_stray_percent_is_read_as_the_standard_library_reads_it():
    body = "command=%2Foncall&text=100%+sure+%zz+%E2%9C%93&user_id=U1&empty="
    assert forms.parse_form(body) == parse_qsl(body, keep_blank_values=True)
    assert parse_body(body.encode(), "application/x-www-form-urlencoded")["text"] == (
        "100% sure %zz ✓"
    )
