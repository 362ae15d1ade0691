"""The inbound worker: consumes the shard streams, one shard at a time per holder, in order.

Each shard is owned by one worker at a time (a Redis lease with heartbeat), so events of one
conversation are handled in order; the shards are spread over the live worker processes
(handoff/membership.py: each holds about INGEST_SHARDS/N of them, a joining process gets its
share within a heartbeat, a dead one's shards move when its leases run out). The consumer name
is the shard's, so whoever owns a shard next first re-reads what the previous owner left pending.
"""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass
from typing import Any

from redis.asyncio import Redis

from bots import metrics, texts
from bots.backoff import Backoff, describe, redis_unreachable
from bots.desk.turns import DeskDecider
from bots.textcap import capped
from bots.turns import TurnDecider
from handoff.conversations import CommitResult, Conversation, ConversationStore
from handoff.events import EventFormatError, InboundEvent, OutboundMessage
from handoff.keys import Keys
from handoff.lease import Lease
from handoff.membership import ShardPlan
from handoff.scripts import Scripts
from handoff.streams import ensure_group, read_group

log = logging.getLogger(__name__)

GROUP = "workers"


@dataclass(frozen=True, slots=True)
class WorkerConfig:
    shards: int = 8
    lease_ttl: float = 10.0
    batch: int = 64
    block_ms: int = 1000
    max_failures: int = 3


class Worker:
    def __init__(
        self, redis: Redis, keys: Keys, scripts: Scripts, store: ConversationStore,
        decider: TurnDecider, config: WorkerConfig, owner: str,
        desk: DeskDecider | None = None,
    ) -> None:
        self._redis = redis
        self._keys = keys
        self._scripts = scripts
        self._store = store
        self.decider = decider
        self.desk = desk  # when an operator desk is configured
        self.config = config
        self.owner = owner
        self.processed = 0
        self._failures: dict[str, int] = {}

    async def run(self, stop: asyncio.Event) -> None:
        leases = {shard: Lease(self._redis, self._scripts, self._keys.shard_lease(shard),
                               ttl=self.config.lease_ttl, owner=self.owner)
                  for shard in range(self.config.shards)}
        plan = ShardPlan(self._scripts, self._keys.workers(), leases, owner=self.owner,
                         ttl=self.config.lease_ttl)
        tasks = [asyncio.create_task(plan.run(stop), name="worker heartbeat")]
        tasks += [
            asyncio.create_task(self._own_shard(shard, plan, stop), name=f"shard {shard}")
            for shard in range(self.config.shards)
        ]
        try:
            await asyncio.gather(*tasks[1:])
        finally:
            for task in [*tasks[1:], tasks[0]]:  # the heartbeat last: it leaves the group
                task.cancel()
                await asyncio.gather(task, return_exceptions=True)
            for shard in list(plan.held):  # claimed, but its task was stopped before it ran
                await leases[shard].release()

    async def _own_shard(self, shard: int, plan: ShardPlan, stop: asyncio.Event) -> None:
        """Consume the shard whenever the plan took it for this process; never fails (a Redis
        outage is waited out with back-off, the shard given back meanwhile)."""
        stream = self._keys.inbound_stream(shard)
        lease, granted = plan.leases[shard], plan.granted[shard]
        backoff = Backoff()
        while not stop.is_set():
            await _either(granted, stop)
            if stop.is_set():
                return
            granted.clear()
            log.info("shard %d: taken (%d of %d)", shard, len(plan.held), plan.target)
            try:
                await ensure_group(self._redis, stream, GROUP)
                await self._consume(shard, stream, stop, lease, plan)
                backoff.reset()
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                if backoff.failed():  # 1st, 2nd, 4th, ... in a row: a long outage stays quiet
                    if redis_unreachable(exc):
                        log.warning("shard %d: %s (failure %d in a row); retrying", shard,
                                    describe(exc), backoff.failures)
                    else:
                        log.exception("shard %d: consumer failed; retrying", shard)
                await backoff.wait(stop)
            finally:
                await lease.release()
                plan.give_up(shard)
                log.info("shard %d: given back", shard)

    async def _consume(
        self, shard: int, stream: str, stop: asyncio.Event, lease: Lease, plan: ShardPlan,
    ) -> None:
        consumer = f"shard-{shard}"
        cursor = "0"  # first what a previous owner left pending, then new entries
        while not stop.is_set() and not lease.lost.is_set() and not plan.must_release(shard):
            batches = await read_group(
                self._redis, GROUP, consumer, {stream: cursor},
                count=self.config.batch, block_ms=0 if cursor == "0" else self.config.block_ms,
            )
            entries = batches[0][1] if batches else []
            if cursor == "0" and not entries:
                cursor = ">"
                continue
            for entry_id, fields in entries:
                if lease.lost.is_set() or plan.must_release(shard):
                    return  # the next holder re-reads what is left of the batch, in order
                await self._guarded(stream, entry_id, fields)

    async def _guarded(self, stream: str, entry_id: str, fields: dict[str, str]) -> None:
        """Process one entry; one that keeps failing goes to the dead-letter stream.

        Without this a single event that crashes the code would block its whole shard (and
        every conversation in it) forever.
        """
        try:
            await self.process(stream, entry_id, fields)
            self._failures.pop(entry_id, None)
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            failures = self._failures[entry_id] = self._failures.get(entry_id, 0) + 1
            if failures < self.config.max_failures:
                raise
            log.exception("%s %s failed %d times: moved to the dead letters", stream, entry_id,
                          failures)
            letter: Any = {
                "stream": stream, "entry": entry_id, "error": repr(exc)[:500],
                "event": fields.get("e", ""),
            }
            await self._redis.xadd(self._keys.dead_letters(), letter, maxlen=10_000,
                                   approximate=True)
            await self._give_up(stream, entry_id, fields)
            self._failures.pop(entry_id, None)

    async def _give_up(self, stream: str, entry_id: str, fields: dict[str, str]) -> None:
        """Never silence: the customer is told the message could not be handled (in the same
        commit that acknowledges it), and the desk hears of an operator's message that
        failed. If even that fails, the entry is acknowledged alone: it is in the dead
        letters for a human."""
        try:
            event = InboundEvent.from_json(fields["e"])
            conv = await self._store.load(event.conversation)
            if event.from_desk:
                await self._store.report_to_desk(
                    event.conversation, "⚠️ Сообщение оператора не обработано (ошибка бота); "
                                        "оно в списке необработанных.")
                await self._redis.xack(stream, GROUP, entry_id)
                return
            sorry = texts.text("processing_failed", self.decider.brain.language)
            await self._store.commit(
                conv, shard_stream=stream, group=GROUP, entry=entry_id, any_state=True,
                outbox=[OutboundMessage(conversation=event.conversation, text=sorry,
                                        created_at=time.time())],
                transcript=[{"at": time.time(), "dir": "out", "text": sorry}],
                desk=self._failure_note(conv, event))
        except Exception:
            log.exception("%s %s: the failure notice failed too; acknowledged", stream,
                          entry_id)
            await self._redis.xack(stream, GROUP, entry_id)

    def _failure_note(self, conv: Conversation, event: InboundEvent) -> list[OutboundMessage]:
        """A note for the operators about a customer's message the bot could not handle: in
        the conversation's topic when a person has it, else in the desk's General topic (no
        topic is opened for it). None without a desk."""
        if self.desk is None:
            return []
        where = conv.id if conv.state != "bot" else "desk:errors"
        text = (f"⚠️ Сообщение клиента {conv.id} не обработано (ошибка бота), клиенту "
                f"отправлен ответ-извинение. Текст: {capped(event.text, 1000)}")
        return [OutboundMessage(conversation=where, lane="desk", text=text, priority=0,
                                created_at=time.time())]

    async def process(self, stream: str, entry_id: str, fields: dict[str, str]) -> None:
        try:
            event = InboundEvent.from_json(fields["e"])
        except (EventFormatError, KeyError, TypeError) as exc:
            log.error("%s %s: unreadable event (%s): acked and skipped", stream, entry_id, exc)
            await self._redis.xack(stream, GROUP, entry_id)
            return
        conv = await self._store.load(event.conversation)
        for _attempt in range(5):
            if event.from_desk:
                result = await self._desk_event(conv, event, stream, entry_id)
            else:
                result = await self._customer_event(conv, event, stream, entry_id)
            if result.status != "conflict":
                break
            # Someone (an operator, the API) changed the conversation meanwhile: decide again.
            conv = await self._store.load(event.conversation)
        else:
            log.error("%s: repeated conflicts; event stays pending", event.conversation)
            return
        self.processed += 1
        if result.status == "duplicate":
            log.info("%s: event %s was already committed", event.conversation, event.event_id)

    async def _customer_event(
        self, conv: Conversation, event: InboundEvent, stream: str, entry_id: str
    ) -> CommitResult:
        decision = await self.decider.decide(conv, event)
        result = await self._store.commit(
            conv, shard_stream=stream, group=GROUP, entry=entry_id,
            dialogue=decision.dialogue,
            profile=event.profile if event.kind != "blocked" else None,
            transcript=decision.transcript, outbox=decision.outbox, desk=decision.desk,
            handoff=decision.handoff, clear_unreachable=event.kind != "blocked",
            unreachable=decision.unreachable, customer_waiting=decision.customer_waiting,
            any_state=bool(decision.transition),  # a script already moved it on purpose
            flag=decision.flag, unflag=decision.unflag, rules=decision.rules,
        )
        metrics.TURNS.labels(conv.state, result.status).inc()
        if decision.handoff is not None and result.status == "ok":
            metrics.HANDOFFS.labels(decision.handoff.reason).inc()
        return result

    async def _desk_event(
        self, conv: Conversation, event: InboundEvent, stream: str, entry_id: str
    ) -> CommitResult:
        if self.desk is None:
            log.warning("desk event %s but no desk is configured: skipped", event.event_id)
            return await self._store.commit(conv, shard_stream=stream, group=GROUP,
                                            entry=entry_id, any_state=True)
        decision = await self.desk.decide(conv, event)
        return await self._store.commit(
            conv, shard_stream=stream, group=GROUP, entry=entry_id, any_state=True,
            transcript=decision.transcript, outbox=decision.outbox, desk=decision.desk,
            owner=decision.relay_as, operator_reply=decision.answered,
        )


async def _either(event: asyncio.Event, stop: asyncio.Event) -> None:
    waiters = [asyncio.ensure_future(event.wait()), asyncio.ensure_future(stop.wait())]
    try:
        await asyncio.wait(waiters, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for waiter in waiters:
            waiter.cancel()
