"""The escalation state machine: page statuses, the moves between them, and where a policy goes next.

Pure: no database, no Slack. The service applies these rules with compare-and-set updates so
that two replicas (or an acknowledge racing a resolve) always end in one defined state.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from bot.config import EscalationPolicy, OrgConfig
from bot.errors import Conflict

TRIGGERED, ACKNOWLEDGED, RESOLVED = "triggered", "acknowledged", "resolved"
OPEN_STATUSES = (TRIGGERED, ACKNOWLEDGED)

ACKNOWLEDGE, ESCALATE, RESOLVE = "acknowledge", "escalate", "resolve"

# (status, event) -> new status. Anything missing is refused with a reason (see `refusal`).
TRANSITIONS: dict[tuple[str, str], str] = {
    (TRIGGERED, ACKNOWLEDGE): ACKNOWLEDGED,
    (TRIGGERED, ESCALATE): TRIGGERED,
    (TRIGGERED, RESOLVE): RESOLVED,
    # Escalating an acknowledged page asks the next step for help: it is live again.
    (ACKNOWLEDGED, ESCALATE): TRIGGERED,
    (ACKNOWLEDGED, RESOLVE): RESOLVED,
}


def allowed_from(event: str) -> tuple[str, ...]:
    """The statuses in which `event` may happen: the WHERE clause of its compare-and-set."""
    return tuple(status for (status, ev), _ in TRANSITIONS.items() if ev == event)


def next_status(status: str, event: str) -> str:
    try:
        return TRANSITIONS[(status, event)]
    except KeyError:
        raise Conflict(refusal(status, event)) from None


def refusal(status: str, event: str) -> str:
    if status == RESOLVED:
        return "This page is already resolved."
    if status == ACKNOWLEDGED and event == ACKNOWLEDGE:
        return "This page is already acknowledged."
    return f"A page that is {status} cannot be {event}d."


# ---- the policy copied onto a page ---------------------------------------------------------

# When a policy repeats and gives no `repeat_after`, its last step gets as long as the step before
# it had; a single-step policy waits the book's usual response time for a page.
USUAL_RESPONSE_TIME = timedelta(minutes=15)


@dataclass(frozen=True)
class Step:
    target_kind: str  # "rotation" or "user"
    target_ref: str
    after: timedelta  # from the start of the chain

    @property
    def notify(self) -> str:
        return f"{self.target_kind}:{self.target_ref}"


@dataclass(frozen=True)
class PolicySnapshot:
    """An escalation policy as it was when the page fired; later config edits do not touch it."""

    id: str
    steps: tuple[Step, ...]
    repeat: int = 0
    repeat_after: timedelta | None = None

    @classmethod
    def of(cls, policy: EscalationPolicy) -> PolicySnapshot:
        return cls(
            id=policy.id,
            steps=tuple(Step(s.target_kind, s.target_ref, s.after) for s in policy.steps),
            repeat=policy.repeat,
            repeat_after=policy.repeat_after,
        )

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "steps": [
                {"notify": s.notify, "after": int(s.after.total_seconds())} for s in self.steps
            ],
            "repeat": self.repeat,
            "repeat_after": (
                int(self.repeat_after.total_seconds()) if self.repeat_after is not None else None
            ),
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> PolicySnapshot:
        steps = []
        for raw in data["steps"]:
            kind, _, ref = raw["notify"].partition(":")
            steps.append(Step(kind, ref, timedelta(seconds=raw["after"])))
        repeat_after = data.get("repeat_after")
        return cls(
            id=data["id"],
            steps=tuple(steps),
            repeat=int(data.get("repeat", 0)),
            repeat_after=timedelta(seconds=repeat_after) if repeat_after is not None else None,
        )

    @property
    def first_rotation(self) -> str | None:
        """The rotation the page belongs to (for load and handoffs): the first one notified."""
        return next((s.target_ref for s in self.steps if s.target_kind == "rotation"), None)

    def delay_before(self, cycle: int, index: int) -> timedelta:
        """How long the chain waits, after the previous step, before step `index` fires."""
        if index > 0:
            return max(self.steps[index].after - self.steps[index - 1].after, timedelta(0))
        if cycle == 0:
            return self.steps[0].after
        return self.last_step_window()

    def last_step_window(self) -> timedelta:
        """How long the last step has to acknowledge before the chain repeats."""
        if self.repeat_after is not None:
            return self.repeat_after
        if len(self.steps) > 1:
            gap = self.steps[-1].after - self.steps[-2].after
            if gap > timedelta(0):
                return gap
        return USUAL_RESPONSE_TIME


@dataclass(frozen=True)
class Position:
    """Where a page is in its policy: the pass through the chain (0 = first) and the step."""

    cycle: int
    step: int


def next_position(policy: PolicySnapshot, current: Position | None) -> Position | None:
    """The step after `current` (None: the page has not fired a step yet); None when exhausted."""
    if current is None:
        return Position(0, 0)
    if current.step + 1 < len(policy.steps):
        return Position(current.cycle, current.step + 1)
    if current.cycle < policy.repeat:
        return Position(current.cycle + 1, 0)
    return None


def resolve_policy(org: OrgConfig, policy_id: str) -> PolicySnapshot:
    """A configured policy by id, or `rotation:<id>`: that rotation, then its secondary.

    The implicit form lets `/page <rotation>` work for a rotation no policy starts with; the
    secondary follows after the usual response time, as the book's fall-through practice asks.
    """
    kind, _, ref = policy_id.partition(":")
    if kind == "rotation" and ref:
        rotation = org.rotation(ref)
        steps = [Step("rotation", rotation.id, timedelta(0))]
        if rotation.secondary:
            steps.append(Step("rotation", rotation.secondary, USUAL_RESPONSE_TIME))
        return PolicySnapshot(id=policy_id, steps=tuple(steps))
    return PolicySnapshot.of(org.policy(policy_id))
