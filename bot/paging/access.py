"""Who may act on a page: the people it notified, its rotations' members, the team's managers and
the org's admins. Anyone else who can see a page (an application engineer in the team channel)
could otherwise silence its escalation by acknowledging it; the requester may only escalate.
"""

from __future__ import annotations

import contextlib
from typing import TYPE_CHECKING

from sqlmodel import Session

from bot.errors import NotAllowed, NotFound
from bot.paging.escalation import ACKNOWLEDGE, ESCALATE, RESOLVE, PolicySnapshot
from bot.paging.models import Page

if TYPE_CHECKING:
    from bot.runtime import Runtime

_VERB = {
    ACKNOWLEDGE: "acknowledge",
    ESCALATE: "escalate",
    RESOLVE: "resolve",
    "classify": "classify",
}


def responder_refs(runtime: Runtime, page: Page) -> tuple[list[str], list[str]]:
    """(config references of everyone who may respond, the rotations they come from).

    Rotations and teams are read from the config as it is now; one removed since the page opened
    simply adds nobody (the people it notified and the admins can still act).
    """
    org = runtime.org
    policy = PolicySnapshot.from_json(page.policy)
    rotation_ids = [s.target_ref for s in policy.steps if s.target_kind == "rotation"]
    if page.rotation_id and page.rotation_id not in rotation_ids:
        rotation_ids.insert(0, page.rotation_id)
    refs = [s.target_ref for s in policy.steps if s.target_kind == "user"]
    known = []
    for rotation_id in rotation_ids:
        rotation = next((r for r in org.rotations if r.id == rotation_id), None)
        if rotation is not None:
            refs.extend(rotation.members)
            known.append(rotation_id)
    if page.team_id:
        with contextlib.suppress(NotFound):
            refs.extend(org.team(page.team_id).managers)
    refs.extend(org.admins)
    return refs, known


def may_respond(runtime: Runtime, session: Session, page: Page, user_id: str) -> bool:
    if user_id in page.notified or user_id == page.acknowledged_by:
        return True
    refs, _ = responder_refs(runtime, page)
    return any(
        ref == user_id or runtime.directory.user_id(ref, session=session) == user_id for ref in refs
    )


def require_responder(
    runtime: Runtime, session: Session, page: Page, user_id: str, action: str
) -> None:
    """Raise NotAllowed, with what the person can do instead, unless they may take `action`."""
    if may_respond(runtime, session, page, user_id):
        return
    if action == ESCALATE and page.requested_by == user_id:
        return
    _, rotations = responder_refs(runtime, page)
    who = "the people it notified"
    if rotations:
        who += ", members of " + " and ".join(rotations)
    who += ", the team's managers and opsbot admins"
    verb = _VERB.get(action, action)
    if page.requested_by == user_id:
        hint = " You asked for this page: you can press *Escalate* if nobody is answering."
    else:
        hint = " To reach more people, ask one of them to escalate, or page again with `/page`."
    raise NotAllowed(f"Only {who} can {verb} page #{page.id}.{hint}")
