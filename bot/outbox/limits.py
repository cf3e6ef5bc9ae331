"""Slack's published Web API rate limits, and token buckets that keep to them.

Slack limits each method per app per workspace by tier (Tier 1: 1+ a minute, Tier 2: 20+,
Tier 3: 50+, Tier 4: 100+, each with some burst), and chat.postMessage specially: about one
message a second per channel with short bursts, under a workspace-wide ceiling of "several
hundred a minute" (https://api.slack.com/docs/rate-limits). The sender paces itself with these
buckets so it uses the whole allowance without meeting 429s; the fake Slack enforces the same
table so tests and benchmarks see what Slack would do.
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace


@dataclass(frozen=True)
class Rate:
    """`per_second` on average, with up to `burst` calls at once after a quiet spell."""

    per_second: float
    burst: float

    def scaled(self, factor: float) -> Rate:
        return Rate(self.per_second * factor, self.burst)


def per_minute(calls: float, burst: float) -> Rate:
    return Rate(calls / 60, burst)


TIERS = {
    1: per_minute(1, 2),  # "a small amount of burst behavior is tolerated"
    2: per_minute(20, 3),  # "occasional bursts"
    3: per_minute(50, 5),  # "sporadic bursts are welcome"
    4: per_minute(100, 10),  # "generous burst behavior"
}

# Each method opsbot calls, with the tier Slack's method reference gives it.
METHOD_TIERS = {
    "chat.update": 3,
    "chat.delete": 3,
    "chat.getPermalink": 4,
    "chat.postEphemeral": 4,
    "conversations.history": 3,
    "conversations.replies": 3,
    "conversations.info": 3,
    "conversations.open": 3,
    "conversations.setTopic": 2,
    "reactions.add": 3,
    "team.info": 3,
    "usergroups.users.list": 2,
    "usergroups.users.update": 2,
    "users.info": 4,
    "users.lookupByEmail": 3,
    "views.open": 4,
    "views.publish": 4,
    "views.push": 4,
    "views.update": 4,
    "auth.test": 4,
}

# chat.postMessage: one a second per channel (bursts of a few), and a workspace-wide ceiling.
# Slack publishes the ceiling only as "several hundred messages a minute"; 300 is the safe end.
POST_PER_CHANNEL = Rate(1.0, 3)
POST_WORKSPACE = per_minute(300, 20)


@dataclass(frozen=True)
class SlackLimits:
    """Which buckets a call draws from: one per method, and one per channel for posting."""

    methods: dict[str, Rate] = field(default_factory=dict)
    per_channel: dict[str, Rate] = field(default_factory=dict)
    default: Rate = TIERS[2]  # "most methods allow at least 20 requests per minute"

    @classmethod
    def published(cls) -> SlackLimits:
        methods = {name: TIERS[tier] for name, tier in METHOD_TIERS.items()}
        methods["chat.postMessage"] = POST_WORKSPACE
        return cls(methods=methods, per_channel={"chat.postMessage": POST_PER_CHANNEL})

    def scaled(self, factor: float) -> SlackLimits:
        """Every rate `factor` times faster (benchmarks compress time; bursts stay the same)."""
        return replace(
            self,
            methods={m: r.scaled(factor) for m, r in self.methods.items()},
            per_channel={m: r.scaled(factor) for m, r in self.per_channel.items()},
            default=self.default.scaled(factor),
        )

    def buckets(self, method: str, channel: str | None) -> list[tuple[str, Rate]]:
        found = [(method, self.methods.get(method, self.default))]
        if channel and method in self.per_channel:
            found.append((f"{method}@{channel}", self.per_channel[method]))
        return found

    def minimum_seconds(self, method: str, calls: int, channels: int = 1) -> float:
        """The least time `calls` calls of `method` spread over `channels` channels can take."""
        rate = self.methods.get(method, self.default)
        seconds = max(0.0, (calls - rate.burst) / rate.per_second)
        if method in self.per_channel and channels:
            lane = self.per_channel[method]
            per_lane = math.ceil(calls / channels)
            seconds = max(seconds, (per_lane - lane.burst) / lane.per_second)
        return seconds


class RateLimiter:
    """Token buckets on a monotonic clock; thread-safe. `take` spends only when all allow."""

    def __init__(
        self,
        limits: SlackLimits,
        *,
        margin: float = 1.0,
        spare: float = 0.0,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        # margin < 1 keeps a little under the limit over time. `spare` tokens of each burst are
        # never spent: when a burst starts, a first call that is slow on its way would otherwise
        # make the next ones look early to Slack (at one post a second per channel, a second
        # of jitter is one token).
        self.limits = limits
        self.margin = margin
        self.spare = spare
        self.monotonic = monotonic
        self._buckets: dict[str, list[float]] = {}  # key -> [tokens, at]
        self._lock = threading.Lock()

    def take(self, method: str, channel: str | None = None) -> float:
        """0.0 if the call may go now (its tokens are spent), else seconds until it may."""
        return self.take_or_wait(method, channel)[0]

    def take_or_wait(self, method: str, channel: str | None = None) -> tuple[float, str | None]:
        """Like `take`, also naming the bucket that makes it wait (the method, or method@channel)."""
        now = self.monotonic()
        with self._lock:
            states = []
            wait, blocker = 0.0, None
            for key, rate in self.limits.buckets(method, channel):
                per_second = rate.per_second * self.margin
                burst = max(1.0, rate.burst - self.spare)
                tokens, at = self._buckets.get(key, (burst, now))
                tokens = min(burst, tokens + (now - at) * per_second)
                states.append((key, tokens))
                if tokens < 1 and (1 - tokens) / per_second > wait:
                    wait, blocker = (1 - tokens) / per_second, key
            if wait > 0:
                for key, tokens in states:
                    self._buckets[key] = [tokens, now]
                return wait, blocker
            for key, tokens in states:
                self._buckets[key] = [tokens - 1, now]
            return 0.0, None
