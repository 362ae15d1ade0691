"""Telegram's sending limits, as the fake enforces them when ``enforce_limits=True``.

From PLATFORMS.md T3 (Bot FAQ, "My bot is hitting limits"):

* "avoid sending more than one message per second" inside one chat, "We may allow short bursts"
  -> per chat: a token bucket of :data:`CHAT_BURST` (3, the burst size is our choice) refilled
  at :data:`CHAT_RATE` (1 message/s). Applies to private chats and groups alike.
* "not able to send more than 20 messages per minute to the same group" -> per group or
  supergroup: at most :data:`GROUP_PER_MINUTE` (20) messages in any sliding 60 s window.
* "not more than 30 messages per second or so" -> overall: at most :data:`GLOBAL_PER_SECOND`
  (30) messages in any sliding 1 s window.

In groups, edits (editMessageText, editMessageReplyMarkup) and topic calls that post a service
message (createForumTopic, editForumTopic, closeForumTopic, reopenForumTopic) count like sends:
"edits and sends share one limit", and "creating a topic counts as sending a message" (levlam,
tdlib/td#2592 and #3034; PLATFORMS.md addendum A2).

One request is one unit for the per-chat bucket; an album (sendMediaGroup) or a batch
(copyMessages/forwardMessages) counts each produced message against the group and global
windows (our assumption: the stricter reading). A rejected request consumes nothing.
``retry_after`` is the number of seconds until the request would fit, rounded up, at least 1.
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass

CHAT_BURST = 3
CHAT_RATE = 1.0
GROUP_PER_MINUTE = 20
GROUP_WINDOW = 60.0
GLOBAL_PER_SECOND = 30
GLOBAL_WINDOW = 1.0


@dataclass(frozen=True)
class LimitViolation:
    """A send the real Telegram would have answered with 429."""

    scope: str  # "chat" | "group" | "global"
    method: str
    chat_id: int
    retry_after: int
    at: float  # the limits clock


@dataclass
class _Bucket:
    tokens: float
    updated: float


def _window_wait(times: deque[float], limit: int, window: float, now: float, n: int) -> float:
    """Seconds until ``n`` more events fit into the sliding window (0 when they fit now)."""
    while times and times[0] <= now - window:
        times.popleft()
    overflow = len(times) + n - limit
    if overflow <= 0:
        return 0.0
    if n > limit:
        return window  # can never fit; tell the caller to back off a full window
    return times[overflow - 1] + window - now


class RateLimits:
    def __init__(self, clock: Callable[[], float]) -> None:
        self.clock = clock
        self._buckets: dict[int, _Bucket] = {}
        self._groups: dict[int, deque[float]] = {}
        self._global: deque[float] = deque()

    def check(self, method: str, chat_id: int, is_group: bool, count: int) -> LimitViolation | None:
        """Consume budget for ``count`` messages to ``chat_id``, or return the violation."""
        now = self.clock()
        bucket = self._buckets.setdefault(chat_id, _Bucket(float(CHAT_BURST), now))
        bucket.tokens = min(float(CHAT_BURST), bucket.tokens + (now - bucket.updated) * CHAT_RATE)
        bucket.updated = now
        waits = {"chat": max(0.0, (1.0 - bucket.tokens) / CHAT_RATE)}
        group = self._groups.setdefault(chat_id, deque()) if is_group else None
        if group is not None:
            waits["group"] = _window_wait(group, GROUP_PER_MINUTE, GROUP_WINDOW, now, count)
        waits["global"] = _window_wait(self._global, GLOBAL_PER_SECOND, GLOBAL_WINDOW, now, count)
        scope, wait = max(waits.items(), key=lambda item: item[1])
        if wait > 1e-9:
            retry_after = max(1, math.ceil(wait - 1e-9))
            return LimitViolation(scope, method, chat_id, retry_after, now)
        bucket.tokens -= 1.0
        if group is not None:
            group.extend([now] * count)
        self._global.extend([now] * count)
        return None
