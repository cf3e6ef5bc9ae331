"""Jinja2 templates for long Slack messages (`bot/templates/*.md.j2`), escaped for mrkdwn by default.

Every `{{ expression }}` is escaped with `bot.mrkdwn.escape` unless its value is `Mrkdwn`: text we
built ourselves, such as a mention from `bot.mrkdwn.user(id)` or a Slack date token. So user text
can never ping a channel or dress up a link, and a template author cannot forget to escape it.

Jinja's own autoescape is off on purpose: it escapes for HTML (quotes become `&#39;`, which Slack
shows as is). Two consequences for template authors:
- Mark trusted mrkdwn in Python with `Mrkdwn(...)` (or `|safe` in a template); joining it with
  `~` or a filter gives plain text again, which is escaped: print each piece with its own `{{ }}`.
- Macros return plain text, so `{{ a_macro() }}` would be escaped twice: use `{% include %}`.

A template may split its document into `{% block %}`s; `render_parts` returns each block's text,
so Python keeps the Block Kit layout (one section per block) and the template keeps the prose.
"""

from __future__ import annotations

from functools import cache
from typing import Any

from jinja2 import Environment, PackageLoader, StrictUndefined

from bot.mrkdwn import escape, quote


class Mrkdwn(str):
    """Slack mrkdwn that is safe to send as it is: built by opsbot, or user text already escaped."""

    __slots__ = ()


def _escape_unless_trusted(value: Any) -> str:
    return value if isinstance(value, Mrkdwn) else escape(value)


def _escaped(value: Any) -> Mrkdwn:
    return Mrkdwn(_escape_unless_trusted(value))


def _force_escaped(value: Any) -> Mrkdwn:
    return Mrkdwn(escape(value))


def _quoted(text: str) -> Mrkdwn:
    return Mrkdwn(quote(text))


@cache
def environment() -> Environment:
    """The environment for the packaged templates (built once; templates are compiled on first use)."""
    env = Environment(
        loader=PackageLoader("bot", "templates"),
        autoescape=False,
        finalize=_escape_unless_trusted,
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        auto_reload=False,
    )
    # Jinja's own escaping filters produce HTML entities and HTML-safe markup; give them
    # mrkdwn meaning, so `|e` and `|safe` do what a template author expects here.
    env.filters.update(e=_escaped, escape=_escaped, forceescape=_force_escaped, safe=Mrkdwn)
    env.filters["quote"] = _quoted
    return env


def render(name: str, **context: Any) -> str:
    """The whole template as mrkdwn text."""
    return environment().get_template(name).render(context).strip("\n")


def render_parts(name: str, **context: Any) -> dict[str, str]:
    """Each `{% block %}` of the template rendered on its own, by block name.

    Only the block runs, so a block must not rely on a `{% set %}` outside it.
    """
    env = environment()
    template = env.get_template(name)
    parts = {}
    for block, render_block in template.blocks.items():
        try:
            text = "".join(render_block(template.new_context(context)))
        except Exception:
            # Point the traceback at the template line, as Template.render does.
            env.handle_exception()
        parts[block] = text.strip("\n")
    return parts


# ---- e-mail: HTML escaped for HTML, plain text as written -------------------------------------


@cache
def html_environment() -> Environment:
    """For `*.html.j2`: Jinja's own autoescape, so every value is escaped for HTML."""
    return Environment(
        loader=PackageLoader("bot", "templates"),
        autoescape=True,
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        auto_reload=False,
    )


@cache
def text_environment() -> Environment:
    """For `*.txt.j2`: plain text (an e-mail's text part) has nothing to escape."""
    return Environment(
        loader=PackageLoader("bot", "templates"),
        autoescape=False,
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        auto_reload=False,
    )


def render_html(name: str, **context: Any) -> str:
    return html_environment().get_template(name).render(context).strip("\n")


def render_text(name: str, **context: Any) -> str:
    return text_environment().get_template(name).render(context).strip("\n")
