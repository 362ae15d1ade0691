"""One retry policy for every platform: adapters classify errors, the policy acts on them."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Protocol

from bots import metrics
from handoff.events import OutboundMessage

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class RetryAfter:
    """The platform said when to come back (Telegram's 429 `retry_after`)."""

    seconds: float


@dataclass(frozen=True, slots=True)
class Transient:
    """Worth another try after a back-off (network, 5xx, VK's flood control)."""

    reason: str
    backoff: float | None = None  # a platform that wants a longer pause than usual says so


@dataclass(frozen=True, slots=True)
class Unreachable:
    """The peer does not accept our messages (blocked the bot, closed their messages)."""

    reason: str


@dataclass(frozen=True, slots=True)
class Permanent:
    """Refused for good (a malformed request, a message that no longer exists)."""

    reason: str


@dataclass(frozen=True, slots=True)
class Redirected:
    """The adapter already moved the target (a migrated chat, a deleted topic): try again at
    once, within a small bound."""

    reason: str


Outcome = RetryAfter | Transient | Unreachable | Permanent | Redirected


class Moved(Exception):
    """Raised by an adapter's call once it has moved the target itself (needs async work the
    synchronous classifier cannot do): the policy tries again at once, a bounded number of
    times."""


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    max_attempts: int = 5  # transient failures in a row
    max_waits: int = 10  # retry_after waits
    max_redirects: int = 3
    backoff_base: float = 0.5
    backoff_cap: float = 30.0

    def backoff(self, attempt: int, base: float | None = None) -> float:
        first = self.backoff_base if base is None else base
        return float(min(self.backoff_cap, first * 2 ** (attempt - 1)))


@dataclass(slots=True)
class _Tries:
    attempts: int = 0
    waits: int = 0
    redirects: int = 0

    def count(self, outcome: Outcome, policy: RetryPolicy) -> str:
        """Why to give up now ("" to try again)."""
        if isinstance(outcome, Permanent):
            return f"rejected: {outcome.reason}"
        if isinstance(outcome, RetryAfter):
            self.waits += 1
            return (f"still rate limited after {self.waits} waits"
                    if self.waits > policy.max_waits else "")
        if isinstance(outcome, Redirected):
            self.redirects += 1
            return (f"moved {self.redirects} times: {outcome.reason}"
                    if self.redirects > policy.max_redirects else "")
        self.attempts += 1
        reason = outcome.reason if isinstance(outcome, Transient) else str(outcome)
        return (f"{self.attempts} attempts failed: {reason}"
                if self.attempts >= policy.max_attempts else "")


DEFAULT_RETRY = RetryPolicy()


class Reporter(Protocol):
    """Where the policy reports what it could not deliver (ConversationStore does)."""

    async def mark_unreachable(self, conv: str, reason: str) -> None: ...

    async def report_delivery_failure(self, conv: str, message_id: str, reason: str) -> None: ...


class Delivery:
    """Runs one delivery with retries; `classify` turns a platform error into an Outcome
    (None: not a platform error but a bug, which propagates to the lane's log)."""

    def __init__(
        self, channel: str, classify: Callable[[Exception], Outcome | None], reporter: Reporter,
        policy: RetryPolicy = DEFAULT_RETRY, *,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
        on_unreachable: Callable[[OutboundMessage, str], Awaitable[None]] | None = None,
    ) -> None:
        self.channel = channel
        self.classify = classify
        self.reporter = reporter
        self.policy = policy
        self.sleep = sleep
        self.on_unreachable = on_unreachable

    async def run(
        self, message: OutboundMessage, call: Callable[[], Awaitable[object]], *,
        pause: Callable[[float], None] | None = None,
    ) -> bool:
        """Deliver with `call()`; True when delivered. `pause(seconds)` spends the sender's
        budget for a retry_after (its pacing then waits); without it the policy sleeps."""
        tries = _Tries()
        while True:
            outcome = await self._attempt(call)
            if outcome is None:
                self._delivered(message)
                return True
            if isinstance(outcome, Unreachable):
                await self._unreachable(message, outcome.reason)
                return False
            refusal = tries.count(outcome, self.policy)
            if refusal:
                return await self.give_up(message, refusal)
            self._count(message, "retried")
            if isinstance(outcome, RetryAfter):
                log.warning("%s %s: 429, retry after %ss", self.channel, message.conversation,
                            outcome.seconds)
                if pause is not None:
                    pause(outcome.seconds)
                else:
                    await self.sleep(outcome.seconds)
            elif isinstance(outcome, Transient):
                delay = self.policy.backoff(tries.attempts, outcome.backoff)
                log.warning("%s %s: %s; retry %d in %.1fs", self.channel, message.conversation,
                            outcome.reason, tries.attempts, delay)
                await self.sleep(delay)

    async def _attempt(self, call: Callable[[], Awaitable[object]]) -> Outcome | None:
        """None when the call went through; what went wrong otherwise."""
        try:
            await call()
        except asyncio.CancelledError:
            raise
        except Moved as exc:
            return Redirected(str(exc))
        except Exception as exc:
            outcome = self.classify(exc)
            if outcome is None:
                raise
            return outcome
        return None

    def _count(self, message: OutboundMessage, outcome: str) -> None:
        metrics.OUTBOUND.labels(self.channel, message.lane, outcome).inc()

    def _delivered(self, message: OutboundMessage) -> None:
        self._count(message, "sent")
        if message.created_at:
            metrics.OUTBOUND_DELAY.labels(self.channel, message.lane).observe(
                max(0.0, time.time() - message.created_at))

    async def _unreachable(self, message: OutboundMessage, reason: str) -> None:
        log.warning("%s %s: unreachable (%s)", self.channel, message.conversation, reason)
        self._count(message, "unreachable")
        await self.reporter.mark_unreachable(message.conversation, reason)
        if self.on_unreachable is not None:
            await self.on_unreachable(message, reason)

    async def give_up(self, message: OutboundMessage, reason: str) -> bool:
        """Never silent: logged, counted and journaled (False: not delivered)."""
        log.error("%s %s: message %s not delivered: %s", self.channel, message.conversation,
                  message.id, reason)
        self._count(message, "failed")
        await self.reporter.report_delivery_failure(message.conversation, message.id, reason)
        return False
