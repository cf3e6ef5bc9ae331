"""The org tree by `parent`: who writes (line teams), who chooses (parent teams), who is on top."""

from __future__ import annotations

from bot.config import OrgConfig, Team


def children(org: OrgConfig, team_id: str) -> list[Team]:
    return [t for t in org.teams if t.parent == team_id]


def is_line_team(team: Team) -> bool:
    """A team with members: its line manager writes its update."""
    return bool(team.members)


def line_teams(org: OrgConfig) -> list[Team]:
    return [t for t in org.teams if is_line_team(t)]


def selects(org: OrgConfig, team: Team) -> bool:
    """Whether the team's manager picks highlights: a parent team, or the top of a tree."""
    return bool(children(org, team.id)) or (team.parent is None and is_line_team(team))


def ancestors(org: OrgConfig, team_id: str) -> list[Team]:
    """Parent, grandparent, ... (stops at a cycle, which config check reports)."""
    found: list[Team] = []
    seen = {team_id}
    team = org.team(team_id)
    while team.parent is not None and team.parent not in seen:
        seen.add(team.parent)
        team = org.team(team.parent)
        found.append(team)
    return found


def root_of(org: OrgConfig, team_id: str) -> Team:
    above = ancestors(org, team_id)
    return above[-1] if above else org.team(team_id)


def descendants(org: OrgConfig, team_id: str) -> list[Team]:
    found: list[Team] = []
    queue = [team_id]
    seen = {team_id}
    while queue:
        for child in children(org, queue.pop(0)):
            if child.id not in seen:
                seen.add(child.id)
                found.append(child)
                queue.append(child.id)
    return found


def roots(org: OrgConfig) -> list[Team]:
    return [t for t in org.teams if t.parent is None and (children(org, t.id) or t.members)]
