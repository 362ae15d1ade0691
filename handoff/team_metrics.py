"""The team's Prometheus metrics, read from Redis when /metrics is scraped.

Gauges: the queue's length and its oldest wait, operators per status, and each operator's
chats. Histograms: first reaction, response and handle time, from the team's all-time report
counters (handoff/reports.py), so every process of the bot exposes the same, whole-team figures
and a restart does not reset them. prometheus_client collects synchronously, so the async
/metrics handlers call `refresh` first and the collector serves that snapshot.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import get_args

from prometheus_client.core import REGISTRY, GaugeMetricFamily, HistogramMetricFamily, Metric
from prometheus_client.registry import Collector

from handoff.operators import Status
from handoff.queue import SCORE_BAND
from handoff.reports import BOUNDS, DURATIONS
from handoff.service import HandoffService

_HELP = {
    "first_reaction": "Queued until the first operator reply",
    "response": "A customer's message (or the claim) until the operator's reply",
    "handle": "Taken until closed",
}


@dataclass(slots=True)
class _Snapshot:
    queue_length: int = 0
    oldest_wait: float = 0.0
    statuses: dict[str, int] = field(default_factory=dict)
    chats: dict[str, int] = field(default_factory=dict)
    totals: dict[str, float] = field(default_factory=dict)


class TeamCollector(Collector):
    def __init__(self) -> None:
        self._snapshot = _Snapshot()

    async def refresh(self, service: HandoffService, now: float) -> None:
        redis, keys = service.redis, service.keys
        async with redis.pipeline(transaction=False) as pipe:
            pipe.zcard(keys.queue())
            for band in range(4):  # the oldest of each priority band (queue.py's scores)
                pipe.zrangebyscore(keys.queue(), band * SCORE_BAND, (band + 1) * SCORE_BAND - 1,
                                   start=0, num=1, withscores=True)
            pipe.hgetall(keys.report_total())
            length, *oldest, totals = await pipe.execute()
        queued_ms = [score % SCORE_BAND for found in oldest for _member, score in found]
        operators = await service.operators()
        statuses: dict[str, int] = {}
        for op in operators:
            statuses[op.status] = statuses.get(op.status, 0) + 1
        self._snapshot = _Snapshot(
            queue_length=int(length),
            oldest_wait=max(0.0, now - min(queued_ms) / 1000) if queued_ms else 0.0,
            statuses=statuses,
            chats={op.id: op.load for op in operators},
            totals={(k.decode() if isinstance(k, bytes) else k): float(v)
                    for k, v in totals.items()},
        )

    def collect(self) -> Iterator[Metric]:
        snap = self._snapshot
        yield GaugeMetricFamily("supportbot_queue_length", "Conversations waiting for a human",
                                value=snap.queue_length)
        yield GaugeMetricFamily("supportbot_queue_oldest_wait_seconds",
                                "How long the longest-waiting queued customer has waited",
                                value=snap.oldest_wait)
        operators = GaugeMetricFamily("supportbot_operators", "Operators by status",
                                      labels=["status"])
        for status in get_args(Status):
            operators.add_metric([status], snap.statuses.get(status, 0))
        yield operators
        chats = GaugeMetricFamily("supportbot_operator_chats",
                                  "Conversations assigned to each operator", labels=["operator"])
        for op, load in sorted(snap.chats.items()):
            chats.add_metric([op], load)
        yield chats
        for name in DURATIONS:
            yield self._histogram(name)

    def _histogram(self, name: str) -> HistogramMetricFamily:
        totals, cumulative, buckets = self._snapshot.totals, 0.0, []
        for index, bound in enumerate((*BOUNDS, float("inf")), start=1):
            cumulative += totals.get(f"all|{name}|b{index}", 0.0)
            buckets.append(("+Inf" if bound == float("inf") else str(bound), cumulative))
        return HistogramMetricFamily(f"supportbot_{name}_seconds", _HELP[name], buckets=buckets,
                                     sum_value=totals.get(f"all|{name}|sum", 0.0))


TEAM = TeamCollector()
REGISTRY.register(TEAM)
