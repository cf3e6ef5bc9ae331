"""Templates escape every value for Slack mrkdwn unless it is mrkdwn we built, and fail loudly."""

from __future__ import annotations

import tomllib
from pathlib import Path, PurePosixPath

import pytest
from jinja2 import UndefinedError

from bot.mrkdwn import user
from bot.rendering import Mrkdwn, environment, render, render_parts

ROOT = Path(__file__).resolve().parent.parent


def render_string(source: str, **context) -> str:
    return environment().from_string(source).render(context)


def test_user_text_is_escaped_for_mrkdwn_in_every_expression():
    text = render_string(
        "{{ note }} / {{ notes[0] }} / {{ ticket.title|upper }}",
        note="<!channel> & friends",
        notes=["<https://evil|click>"],
        ticket={"title": "<!here>"},
    )
    assert text == "&lt;!channel&gt; &amp; friends / &lt;https://evil|click&gt; / &lt;!HERE&gt;"


def test_escaping_follows_slack_rules_not_html():
    # Slack decodes only &amp; &lt; &gt;; an HTML entity for a quote would show as typed.
    text = render_string("{{ a }} {{ a|e }} {{ a|forceescape }}", a='it\'s "fine" <b>')
    assert text == ('it\'s "fine" &lt;b&gt; ' * 3).strip()


def test_trusted_mrkdwn_is_printed_as_it_is():
    text = render_string(
        "{{ mention }} {{ raw|safe }} {{ mention|e }}", mention=Mrkdwn(user("U0A01")), raw="*bold*"
    )
    assert text == "<@U0A01> *bold* <@U0A01>"


def test_trusted_mrkdwn_joined_with_text_is_escaped_again_rather_than_trusted():
    text = render_string("{{ 'by ' ~ mention }}", mention=Mrkdwn(user("U0A01")))
    assert text == "by &lt;@U0A01&gt;"


def test_the_quote_filter_quotes_each_line_and_escapes_it():
    text = render_string("{{ notes|quote }}", notes="watch <!channel>\n& the db")
    assert text == "> watch &lt;!channel&gt;\n> &amp; the db"


def test_a_missing_variable_raises_instead_of_printing_nothing():
    with pytest.raises(UndefinedError, match="'notes' is undefined"):
        render_string("Notes: {{ notes }}")
    with pytest.raises(UndefinedError, match="no attribute 'pages'"):
        render_string("Pages: {{ figures.pages }}", figures=object())


def test_a_packaged_template_missing_a_variable_raises():
    context = agenda_context()
    del context["rotation_id"]
    with pytest.raises(UndefinedError, match="'rotation_id' is undefined"):
        render_parts("oncall_review_agenda.md.j2", **context)


def test_block_tags_leave_no_blank_lines_and_each_block_renders_on_its_own():
    template = environment().from_string(
        "{% block first %}\n"
        "{% for item in items %}\n"
        "  • {{ item }}\n"
        "{% endfor %}\n"
        "{% endblock %}\n"
        "{% block second %}\nsecond {{ n }}\n{% endblock %}\n"
    )
    parts = {
        name: "".join(block(template.new_context({"items": ["a", "b"], "n": 2})))
        for name, block in template.blocks.items()
    }
    assert parts == {"first": "  • a\n  • b\n", "second": "second 2\n"}


def test_render_and_render_parts_read_the_packaged_templates():
    assert render("oncall_review_agenda.md.j2", **agenda_context()).startswith("You just came off")
    parts = render_parts("oncall_review_agenda.md.j2", **agenda_context())
    assert list(parts) == ["intro", "agenda", "footnote"]
    assert parts["footnote"] == "Sustainable on-call: fewer than 5 business-impacting pages a week."


def agenda_context() -> dict:
    class Figures:
        pages = business_impacting = false_alarms = off_hours = 0

    return {
        "rotation_id": "infra-oncall",
        "start": "Mon 09 Nov",
        "end": "Mon 16 Nov",
        "figures": Figures(),
        "open_pages": [],
        "open_tickets": [],
        "max_listed": 10,
        "local": str,
        "age": str,
    }


def test_every_packaged_template_compiles_and_is_package_data():
    pyproject = tomllib.loads((ROOT / "pyproject.toml").read_text())
    shipped = pyproject["tool"]["setuptools"]["package-data"]["bot"]
    names = environment().list_templates()
    assert names, "no templates found"
    for name in names:
        environment().get_template(name)
        # setuptools globs like pathlib: `templates/*` does not reach into subfolders.
        assert any(PurePosixPath("templates", name).match(p) for p in shipped), name
