"""Who a page reaches: what `/page <name>` pages, and whom each escalation step notifies now.

One answer for the chain, the `/page` preview and the requester's confirmation, so what people are
told before a page and what the chain then does agree.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any

from sqlmodel import Session

from bot.config import OrgConfig
from bot.errors import InvalidInput, NotFound, UnknownRotation
from bot.paging.escalation import PolicySnapshot, Step, resolve_policy

if TYPE_CHECKING:
    from bot.runtime import Runtime


def is_slack_user(ref: str) -> bool:
    """A Slack user id (U…/W…), as opposed to an e-mail address nobody in Slack has."""
    return ref[:1] in ("U", "W") and ref.isalnum()


@dataclass(frozen=True)
class StepTarget:
    """Whom a step reaches at an instant: a Slack user, a webhook, or nobody and why not."""

    user: str | None = None  # a Slack id
    webhook: str | None = None  # a configured webhook's id
    ref: str | None = None  # as the config names the person (id or e-mail)
    problem: str | None = None  # why nobody is reached
    unreachable: bool = False  # someone was named but cannot be reached in Slack


def step_target(runtime: Runtime, session: Session, step: Step, now: datetime) -> StepTarget:
    if step.target_kind == "webhook":
        return StepTarget(webhook=step.target_ref)
    if step.target_kind == "rotation":
        try:
            ref = who_is_on_call(session, runtime.org, step.target_ref, now).primary
        except UnknownRotation:
            return StepTarget(problem=f"rotation {step.target_ref} is no longer in the config")
        if ref is None:
            return StepTarget(problem="nobody is on call")
    else:
        ref = step.target_ref
    user = runtime.directory.user_id(ref, session=session)
    if not is_slack_user(user):
        return StepTarget(
            ref=ref, problem=f"{ref} matches no Slack user, so cannot be reached", unreachable=True
        )
    return StepTarget(user=user, ref=ref)


def who_is_on_call(session: Session, org: OrgConfig, rotation_id: str, at: datetime) -> Any:
    from bot.oncall.service import who_is_on_call as on_call  # on-call's one answer; imported late

    return on_call(session, org, rotation_id, at)


# ---- /page targets -------------------------------------------------------------------------
@dataclass(frozen=True)
class PageTarget:
    """What `/page <name>` pages: a policy, and the team whose channel hears about it."""

    policy_id: str
    team_id: str | None
    label: str
    rotation_id: str | None


def page_target(org: OrgConfig, name: str) -> PageTarget:
    """A rotation, a team (its on-call rotation) or an escalation policy, by id.

    A rotation pages through the first policy that starts with it, else through itself and its
    secondary (`rotation:<id>`). Support rotations are business-hours only and never paged.
    """
    name = name.strip().lstrip("#@")
    rotation = next((r for r in org.rotations if r.id == name), None)
    team = next((t for t in org.teams if t.id == name), None)
    if rotation is None and team is not None:
        oncall = [r for r in org.rotations_of_team(team.id) if r.kind == "oncall"]
        if not oncall:
            raise InvalidInput(f"Team '{team.id}' has no on-call rotation to page.")
        rotation = oncall[0]
    if rotation is not None:
        if rotation.kind != "oncall":
            alternatives = [
                r.id for r in org.rotations_of_team(rotation.team) if r.kind == "oncall"
            ]
            hint = f" Page `{alternatives[0]}` instead." if alternatives else ""
            raise InvalidInput(
                f"'{rotation.id}' is a support rotation (business hours, never paged).{hint}"
            )
        policy = next(
            (
                p
                for p in org.escalation_policies
                if p.steps[0].target_kind == "rotation" and p.steps[0].target_ref == rotation.id
            ),
            None,
        )
        return PageTarget(
            policy.id if policy else f"rotation:{rotation.id}",
            rotation.team,
            rotation.id,
            rotation.id,
        )
    policy = next((p for p in org.escalation_policies if p.id == name), None)
    if policy is not None:
        snapshot = PolicySnapshot.of(policy)
        first = snapshot.first_rotation
        return PageTarget(
            policy.id, org.rotation(first).team if first else None, f"policy {policy.id}", first
        )
    raise NotFound(f"There is no rotation, team or escalation policy '{name}' in the org config.")


@dataclass(frozen=True)
class Preview:
    """Whom a page to `target` would reach first right now, or why it would reach nobody."""

    first: StepTarget | None
    problems: list[str]


def preview(runtime: Runtime, session: Session, target: PageTarget) -> Preview:
    """Walk the policy's first pass as the chain would: the first step that reaches someone."""
    policy = resolve_policy(runtime.org, target.policy_id)
    now = runtime.clock.now()
    problems = []
    for index, step in enumerate(policy.steps):
        reached = step_target(runtime, session, step, now)
        if reached.user or reached.webhook:
            return Preview(reached, problems)
        problems.append(f"step {index + 1} ({step.notify}): {reached.problem}")
    return Preview(None, problems)
