"""The desk's clockwork, run by one process at a time (a Redis lease): shifts starting and
ending, the SLA ladder (escalations and reminders), re-queueing the conversations of operators
who went offline, optional auto-assignment, and queue-position updates for waiting customers
(only when the position changed meaningfully, never a message per event).

Mentions reach only people on shift: an operator whose status is offline (their shift ended,
or they said /offline) is never pinged at night. Supervisors are those in DESK_SUPERVISORS and
those given the role (handoff/access.py); one who never set a status counts as reachable, since
the ladder's top must reach someone."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Mapping
from datetime import UTC, datetime

from bots import texts
from bots.desk.notices import CustomerNotices
from bots.desk.store import card_of_this_handoff
from bots.desk.turns import desk_item, summary_item
from bots.rules.timers import RuleTimers
from bots.turns import desk_bookkeeping
from handoff.access import Access
from handoff.conversations import ConversationStore
from handoff.events import OutboundMessage
from handoff.lease import Lease
from handoff.service import HandoffService, SlaEvent

# What each level of the SLA ladder says: (queued, waiting for a reply) -> text.
LADDER_TEXTS = {
    1: ("⏰ Клиент ждёт оператора {minutes} мин. Приоритет повышен.",
        "⏰ Клиент ждёт ответа {minutes} мин."),
    2: ("⏰⏰ Клиент ждёт оператора уже {minutes} мин — руководителям: нужна помощь.",
        "⏰⏰ Клиент ждёт ответа уже {minutes} мин — руководителям: нужна помощь."),
    3: ("🚨 Клиент ждёт оператора {minutes} мин, разговор так и не взят.",
        "🚨 Клиент ждёт ответа {minutes} мин, ответа всё ещё нет."),
}
MAX_MENTIONS = 10  # a level-1 call to the operators on shift, not to a crowd
log = logging.getLogger(__name__)


def meaningful_change(told: int, now: int) -> bool:
    """Tell again when the customer moved up by at least a third (and at least two places),
    or reached the front."""
    return now < told and (now == 1 or told - now >= max(2, told // 3))


class DeskScheduler:
    def __init__(
        self, service: HandoffService, store: ConversationStore, lease: Lease, *,
        supervisors: list[int], language: str = "ru", auto_assign: bool = False,
        tick: float = 5.0, access: Access | None = None, desk: bool = True,
        rules: RuleTimers | None = None,
    ) -> None:
        self.rules = rules  # timed automation rules (bots/rules/timers.py)
        self._service = service
        self._store = store
        self._lease = lease
        self.supervisors = supervisors
        self.language = language
        self.auto_assign = auto_assign
        self.tick = tick
        self.access = access
        self.desk = desk  # a Telegram desk to post notes to (without one: the web console)

    async def run(self, stop: asyncio.Event) -> None:
        if not await self._lease.acquire(stop):
            return
        try:
            while not stop.is_set() and not self._lease.lost.is_set():
                try:
                    await self.once()
                except Exception:
                    log.exception("desk scheduler: a round failed")
                with contextlib.suppress(asyncio.TimeoutError):
                    await asyncio.wait_for(stop.wait(), self.tick)
        finally:
            await self._lease.release()

    async def once(self) -> None:
        """One round; tests call it directly with a fake clock."""
        for edge in await self._service.shift_edges():
            await self._shift_note(edge.op, edge.started, edge.status)
        for event in await self._service.sla_due():
            await self._sla_notice(event)
        notices = CustomerNotices(self.language)
        for moved in await self._service.requeue_offline(notices=notices.requeued):
            await self._requeued(moved.conv, moved.detail)
        if self.auto_assign:
            for claimed in await self._service.auto_assign(notices=notices.joined):
                await self._assigned(claimed.conv, claimed.owner)
        await self._positions()
        if self.rules is not None:
            await self.rules.once()

    async def _sla_notice(self, event: SlaEvent) -> None:
        conv = event.conv
        waited = self._service.clock.now() - event.since
        minutes = max(1, round(waited / 60))
        priority = event.priority or (await self._store.load(conv)).priority
        fields, _ = await self._store.snapshot(conv, last=1)
        if not card_of_this_handoff(fields):
            # The card itself still waits for the group's budget: a note ahead of it would
            # spend that budget, and the card is re-rendered at the raised priority anyway.
            log.info("%s: SLA %s while its card is not shown yet: no note", conv, event.kind)
            await self._desk(conv, desk_bookkeeping(conv, priority)[:1])
            return
        queued = event.kind == "escalate"
        text = LADDER_TEXTS[event.level][0 if queued else 1].format(minutes=minutes)
        mentions = await self._ladder_mentions(event.level, event.owner)
        note = OutboundMessage(conversation=conv, text=text, lane="desk", created_at=time.time(),
                               mention=tuple(mentions), priority=0)
        await self._desk(conv, [note, *desk_bookkeeping(conv, priority)[:1]])

    async def _ladder_mentions(self, level: int, owner: str) -> list[int]:
        """Level 1: the owner, or for a queued conversation the operators online; level 2:
        the supervisors; level 3: both. Only people on shift; when level 1 finds nobody,
        the supervisors are called at once."""
        # One read of everyone's status: the operators and the supervisors alike.
        status = {o.id: o.status for o in await self._service.operators()}
        first: list[str] = []
        if level != 2:
            if owner:
                first = [owner] if status.get(owner, "offline") != "offline" else []
            else:
                first = sorted(op for op, now in status.items() if now == "online")
                first = first[:MAX_MENTIONS]
        people = first
        if level >= 2 or not first:
            people = list(dict.fromkeys(first + await self._supervisors_on_shift(status)))
        return [int(op.split(":", 1)[1]) for op in people
                if op.startswith("tg:") and op[3:].isdigit()]

    async def _supervisors_on_shift(self, status: Mapping[str, str]) -> list[str]:
        """Supervisors not offline; one who never set a status counts as reachable."""
        listed = {f"tg:{uid}" for uid in self.supervisors}
        if self.access is not None:
            listed |= await self.access.members("supervisor")
        return sorted(op for op in listed if status.get(op) != "offline")

    async def _shift_note(self, op: str, started: bool, status: str) -> None:
        """A line in the General topic, so the team sees who came and went."""
        known = await self._service.operator(op)
        name = (known.name if known else "") or op
        if started:
            text = (f"🕘 Смена {name} началась: онлайн." if status == "online"
                    else f"🕘 Смена {name} началась.")
        else:
            text = f"🕘 Смена {name} закончилась: офлайн."
            if known is not None and known.load:
                minutes = max(1, round(self._service.config.offline_grace_seconds / 60))
                text += (f" Разговоры ({known.load}) вернутся в очередь через {minutes} мин, "
                         "если не продлить смену (/online).")
        await self._desk("desk:shifts", [desk_item("desk:shifts", "text", text, priority=0),
                                         summary_item("desk:shifts")])

    async def _assigned(self, conv: str, operator: str) -> None:
        """A post that mentions the operator: a card edit notifies nobody, and an operator
        who was given a customer must learn of it."""
        known = await self._service.operator(operator)
        name = (known.name if known else "") or operator
        mentions = (int(operator.split(":", 1)[1]),) if operator.startswith("tg:") else ()
        note = OutboundMessage(
            conversation=conv, lane="desk", created_at=time.time(), priority=0,
            text=f"👤 Разговор назначен: {name}.", mention=mentions)
        priority = (await self._store.load(conv)).priority
        await self._desk(conv, [note, *desk_bookkeeping(conv, priority)])

    async def _requeued(self, conv: str, operator: str) -> None:
        """A post in the topic, not only the card edited back to "queued": operators are
        notified of posts, and someone has to take the customer again."""
        known = await self._service.operator(operator)
        name = (known.name if known else "") or operator
        minutes = max(1, round(self._service.config.offline_grace_seconds / 60))
        note = OutboundMessage(
            conversation=conv, lane="desk", created_at=time.time(), priority=0,
            text=f"🔁 {name} не в сети дольше {minutes} мин: разговор снова в очереди, "
                 f"возьмите его.")
        priority = (await self._store.load(conv)).priority
        await self._desk(conv, [note, *desk_bookkeeping(conv, priority)])

    async def _positions(self) -> None:
        items = await self._service.queue(limit=200)
        # One round trip for the whole queue: this runs every tick, whatever its length.
        told_before = await self._store.told_positions([item.conv for item in items])
        # New in the queue: the handoff notice already said where they stand.
        await self._store.set_told_positions({
            item.conv: item.position
            for item, told in zip(items, told_before, strict=True) if not told})
        now = datetime.fromtimestamp(self._service.clock.now(), tz=UTC)
        for item, told in zip(items, told_before, strict=True):
            if not told or not meaningful_change(told, item.position):
                continue
            hours = self._service.config.hours_for(item.desk)  # the desk's own, if it has any
            if hours is not None and not hours.is_open(now):
                # the same promise as the handoff notice: when we open
                text = texts.text("queue_update_closed", self.language, position=item.position,
                                  when=texts.opening(hours.next_open(now), now, self.language))
            else:
                estimate = await self._service.estimate_for(item.priority,
                                                            position=item.position)
                text = texts.text("queue_update", self.language, position=item.position,
                                  minutes=max(1, round(estimate / 60)))
            await self._store.tell_position(item.conv, item.position, text)

    async def _desk(self, conv: str, items: list[OutboundMessage]) -> None:
        if not self.desk:
            return  # nobody reads the desk's outbox; the console follows the journal
        await self._store.post_desk(items)
