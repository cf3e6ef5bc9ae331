"""Exceptions the core raises; each carries a message fit to show the person who caused it."""

from __future__ import annotations


class OpsbotError(Exception):
    """Base for errors whose message is safe and useful to show to a Slack user or API caller."""


class InvalidInput(OpsbotError):
    pass


class InvalidDuration(InvalidInput):
    pass


class NotFound(OpsbotError):
    pass


class UnknownTeam(NotFound):
    def __init__(self, team_id: str) -> None:
        super().__init__(f"There is no team '{team_id}' in the org config.")
        self.team_id = team_id


class UnknownRotation(NotFound):
    def __init__(self, rotation_id: str) -> None:
        super().__init__(f"There is no rotation '{rotation_id}' in the org config.")
        self.rotation_id = rotation_id


class UnknownPolicy(NotFound):
    def __init__(self, policy_id: str) -> None:
        super().__init__(f"There is no escalation policy '{policy_id}' in the org config.")
        self.policy_id = policy_id


class UnknownQueue(NotFound):
    def __init__(self, queue_id: str) -> None:
        super().__init__(f"There is no support queue '{queue_id}' in the org config.")
        self.queue_id = queue_id


class NotAllowed(OpsbotError):
    pass


class Conflict(OpsbotError):
    """The request clashes with the current state (already resolved, already claimed, ...)."""
