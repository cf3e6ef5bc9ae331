"""Paging's figures for the Wins and Challenges form: a team's pages over a cycle."""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING

from sqlmodel import Session

from bot.config import OrgConfig
from bot.paging.load import shift_figures

if TYPE_CHECKING:
    from bot.runtime import Runtime
    from bot.wins.news import OpsNews


def team_pages(
    session: Session, org: OrgConfig, team_id: str, start: datetime, end: datetime
) -> OpsNews:
    from bot.wins.news import OpsNews

    rotations = [r.id for r in org.rotations_of_team(team_id) if r.kind == "oncall"]
    if not rotations:
        return OpsNews()
    pages = business = off_hours = 0
    for rotation_id in rotations:
        counts = shift_figures(session, rotation_id, start, end)
        pages += counts.pages
        business += counts.business_impacting
        off_hours += counts.off_hours
    return OpsNews(pages=pages, business_impacting=business, off_hours=off_hours)


def install(runtime: Runtime) -> None:
    from bot.wins.news import register

    register(runtime.extras, team_pages)
