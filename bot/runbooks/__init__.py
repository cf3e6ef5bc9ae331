"""Runbooks: the Markdown runbooks in runbooks/, one index that pages and support requests share."""

from bot.runbooks.library import (
    InvalidRunbook,
    Runbook,
    RunbookIndex,
    RunbookMatch,
    parse_runbook,
    runbook_index,
    runbooks_dir,
)

__all__ = [
    "InvalidRunbook",
    "Runbook",
    "RunbookIndex",
    "RunbookMatch",
    "parse_runbook",
    "runbook_index",
    "runbooks_dir",
]
