"""Token buckets and the priority limiter, on an injected clock."""

from __future__ import annotations

import asyncio

from bots.ratelimit import PriorityLimiter, TokenBucket, per_second


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_bucket_allows_a_burst_then_the_rate() -> None:
    clock = Clock()
    bucket = TokenBucket(rate=1.0, burst=3.0, clock=clock)
    for _ in range(3):
        assert bucket.delay() == 0
        bucket.take()
    assert bucket.delay() == 1.0
    clock.now += 0.5
    assert bucket.delay() == 0.5
    clock.now += 0.5
    assert bucket.delay() == 0


def test_retry_after_pauses_the_bucket() -> None:
    clock = Clock()
    bucket = TokenBucket(rate=1.0, burst=3.0, clock=clock)
    bucket.pause(5)
    assert bucket.delay() == 6.0  # five seconds of silence, then one token's worth
    clock.now += 6
    assert bucket.delay() == 0


def test_group_budget_is_twenty_a_minute() -> None:
    clock = Clock()
    bucket = TokenBucket(rate=20 / 60, burst=1.0, clock=clock)
    sent = 0
    for _ in range(60 * 10):  # ten seconds' worth of attempts, 0.1 s apart, for a minute
        if bucket.delay() == 0:
            bucket.take()
            sent += 1
        clock.now += 0.1
    assert 20 <= sent <= 21


async def test_priority_limiter_serves_customers_before_the_desk() -> None:
    limiter = PriorityLimiter(TokenBucket(rate=200.0, burst=1.0))
    await limiter.acquire()  # the only token: everyone after this waits
    order: list[str] = []

    async def take(name: str, priority: int) -> None:
        await limiter.acquire(priority)
        order.append(name)

    tasks = [asyncio.create_task(take(f"desk{i}", 1)) for i in range(3)]
    await asyncio.sleep(0)
    tasks += [asyncio.create_task(take(f"customer{i}", 0)) for i in range(2)]
    await asyncio.gather(*tasks)
    assert order == ["customer0", "customer1", "desk0", "desk1", "desk2"]


async def test_the_customer_waiting_longest_is_answered_first() -> None:
    """After an outage a backlog of answers competes for the budget: the customers who wrote
    before it go first, whatever order their answers were decided in."""
    limiter = PriorityLimiter(TokenBucket(rate=200.0, burst=1.0))
    await limiter.acquire()
    order: list[str] = []

    async def take(name: str, since: float) -> None:
        await limiter.acquire(0, since)
        order.append(name)

    tasks = [asyncio.create_task(take(name, since))
             for name, since in [("wrote at 30", 30.0), ("wrote at 10", 10.0),
                                 ("wrote at 20", 20.0)]]
    await asyncio.gather(*tasks)
    assert order == ["wrote at 10", "wrote at 20", "wrote at 30"]


def test_sliding_window_allows_twenty_a_minute_as_telegram_counts_them() -> None:
    from bots.ratelimit import SlidingWindow

    clock = Clock()
    window = SlidingWindow(20, 60.0, clock=clock)
    sent = []
    for _ in range(600):  # a send attempt every 0.2 s for two minutes
        if window.delay() == 0:
            window.take()
            sent.append(clock.now)
        clock.now += 0.2
    assert len(sent) == 40  # a burst of 20, then 20 more once the first minute has passed
    assert all(b - a >= 60 for a, b in zip(sent, sent[20:], strict=False))
    window.give_back()
    assert window.delay() == 0


def test_per_second_never_lets_more_than_n_through_in_any_second() -> None:
    """A full bucket plus a second's refill is what Telegram's 30/s window refused (429s)."""
    clock = Clock()
    budget = per_second(30, clock=clock)
    sent: list[float] = []
    while clock.now < 105.0:  # a sender with an endless backlog, asking as soon as allowed
        wait = budget.delay()
        if wait > 0:
            clock.now += max(wait, 1e-6)  # as a real clock would have moved on
            continue
        budget.take()
        sent.append(clock.now)
    busiest = max(sum(1 for at in sent if start <= at < start + 1.0) for start in sent)
    assert busiest <= 30
    assert len(sent) / 5.0 >= 27  # and still about the rate allowed
