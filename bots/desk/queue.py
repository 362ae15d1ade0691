"""What the desk posts next, decided without any I/O (testable on a fake clock, no aiogram).

Items wait in one queue: by priority (urgent customers' cards first; a spinner an operator is
looking at before anything), then by arrival. One conversation's items keep their order: none
is handed out while another of its items is being delivered. Items with the same `coalesce` key
replace each other while they wait (only the latest render of a card is posted). A customer's
texts waiting behind one another can be taken together, to be posted as one message. The queue
summary has a schedule of its own: it is a view of the queue, rendered at most every `every`
seconds (`every_busy` while other items wait, since it spends the same budget), or at once when
an operator asked.
"""

from __future__ import annotations

import heapq
import itertools
from collections.abc import Callable
from dataclasses import dataclass

from handoff.events import OutboundMessage
from handoff.outbox import OutboxItem

MERGED_LIMIT = 4000  # characters in one post of merged customer texts (Telegram allows 4,096)


@dataclass(order=True)
class Queued:
    priority: int
    seq: int
    item: OutboxItem


def mergeable(message: OutboundMessage) -> bool:
    """A customer's plain text relayed to the desk (a copy of a Telegram text, or another
    channel's text without files)."""
    return (message.said_at > 0 and message.kind in ("copy", "text") and bool(message.text)
            and not message.files and not message.album and not message.mention)


class DeskQueue:
    def __init__(self, clock: Callable[[], float], *, every: float = 20.0,
                 every_busy: float = 60.0, asked_below: int = 99) -> None:
        self._clock = clock
        self.every = every
        self.every_busy = every_busy
        self._asked_below = asked_below  # a summary of a lower priority was asked for
        self._heap: list[Queued] = []
        self._seq = itertools.count()
        self._latest: dict[str, int] = {}
        self._busy: set[str] = set()
        self._summary: OutboxItem | None = None
        self._summary_at = -every_busy

    def __len__(self) -> int:
        return len(self._heap)

    def push(self, item: OutboxItem) -> None:
        message = item.message
        if message.kind == "summary":
            self._summary = item
            if message.priority < self._asked_below:  # an operator asked (/queue): now
                self._summary_at = -self.every_busy
            return
        # An operator looking at a spinner is answered ahead of everything.
        priority = -1 if message.kind == "callback_answer" else message.priority
        seq = next(self._seq)
        if message.coalesce:
            self._latest[message.coalesce] = seq
        heapq.heappush(self._heap, Queued(priority, seq, item))

    def take(self) -> tuple[Queued | None, list[OutboxItem]]:
        """The most urgent item whose conversation has nothing in flight (now marked busy),
        and the items it superseded on the way (to acknowledge without posting)."""
        deferred: list[Queued] = []
        superseded: list[OutboxItem] = []
        found = None
        while self._heap:
            candidate = heapq.heappop(self._heap)
            message = candidate.item.message
            if message.conversation in self._busy:
                deferred.append(candidate)
                continue
            if message.coalesce and self._latest.get(message.coalesce) != candidate.seq:
                superseded.append(candidate.item)  # a newer render of it is waiting
                continue
            found = candidate
            break
        for queued in deferred:
            heapq.heappush(self._heap, queued)
        if found is not None:
            self._busy.add(found.item.message.conversation)
        return found, superseded

    def done(self, queued: Queued) -> None:
        """Its delivery ended: the conversation's next item may go."""
        message = queued.item.message
        self._busy.discard(message.conversation)
        if message.coalesce and self._latest.get(message.coalesce) == queued.seq:
            del self._latest[message.coalesce]

    def run_behind(self, item: OutboxItem) -> list[OutboxItem]:
        """The customer's texts queued right behind `item`, taken out to be posted with it:
        an unbroken run of them, so nothing else of the conversation changes its order."""
        mine = sorted(q for q in self._heap
                      if q.item.message.conversation == item.message.conversation)
        run: list[Queued] = []
        size = len(item.message.text)
        for queued in mine:
            size += len(queued.item.message.text) + 20  # the time stamp of each line
            if not mergeable(queued.item.message) or size > MERGED_LIMIT:
                break
            run.append(queued)
        self._remove(run)
        return [q.item for q in run]

    def album_parts(self, item: OutboxItem) -> list[OutboxItem]:
        """The other parts of the album `item` belongs to, taken out of the queue."""
        album, conv = item.message.album, item.message.conversation
        if not album:
            return []
        parts = [q for q in self._heap
                 if q.item.message.conversation == conv and q.item.message.album == album]
        self._remove(parts)
        return [q.item for q in parts]

    def summary_due(self) -> OutboxItem | None:
        """The summary to render now, if its time has come (taken: one render per request)."""
        if self._summary is None or self.summary_wait() > 0:
            return None
        item, self._summary = self._summary, None
        self._summary_at = self._clock()
        return item

    def summary_wait(self) -> float:
        """Seconds until the waiting summary may be rendered (inf when none waits)."""
        if self._summary is None:
            return float("inf")
        every = self.every if not self._heap else self.every_busy
        return max(0.0, self._summary_at + every - self._clock())

    def _remove(self, taken: list[Queued]) -> None:
        if taken:
            self._heap = [q for q in self._heap if q not in taken]
            heapq.heapify(self._heap)
