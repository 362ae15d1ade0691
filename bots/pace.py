"""How fast one customer may make the bot work: a flood from one chat is stored, not answered.

A customer (or a script behind a customer's account) sending dozens of messages a second would
otherwise get an answer to each: their chat's outbound lane fills with answers Telegram lets out
at about one a second, each answer spends the bot's global budget (30 a second, shared by every
customer), and a conversation's history fills with noise. So the bot answers a customer at most
`burst` messages in a row and then `rate` a second; past that a message is still stored in the
transcript (nothing a customer wrote is lost, and operators see it), but not answered, and the
customer is told once per streak why the bot went quiet.

The buckets live in the worker's memory: a conversation's events are handled by the one worker
that owns its shard, so that worker sees them all. A worker that takes a shard over starts with
full buckets, which at worst lets a flooding customer have one more burst answered.

Only a conversation with the bot is paced: once it is with a person every message is relayed,
since an operator must see what the customer wrote (the desk paces its own posts).
"""

from __future__ import annotations

import enum
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass

from bots.ratelimit import TokenBucket


@dataclass(frozen=True, slots=True)
class PaceConfig:
    rate: float = 0.5  # messages a second answered, once a burst is spent
    burst: float = 20.0  # a pasted list or an album of ten photos is not a flood
    kept: int = 100_000  # conversations remembered; the least recently active are forgotten


class Pace(enum.Enum):
    ANSWER = "answer"
    WARN = "warn"  # the first message of a streak not answered: say why, once
    QUIET = "quiet"


class CustomerPace:
    def __init__(self, config: PaceConfig = PaceConfig(), *,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.config = config
        self._clock = clock
        self._buckets: OrderedDict[str, tuple[TokenBucket, bool]] = OrderedDict()

    def admit(self, conversation: str) -> Pace:
        """Whether the bot answers this customer's message now (and takes one token)."""
        bucket, warned = self._buckets.get(conversation, (None, False))
        if bucket is None:
            bucket = TokenBucket(self.config.rate, self.config.burst, clock=self._clock)
            while len(self._buckets) >= self.config.kept:
                self._buckets.popitem(last=False)
        if bucket.delay() == 0:
            bucket.take()
            self._buckets[conversation] = (bucket, False)
            verdict = Pace.ANSWER
        else:
            self._buckets[conversation] = (bucket, True)
            verdict = Pace.QUIET if warned else Pace.WARN
        self._buckets.move_to_end(conversation)
        return verdict
