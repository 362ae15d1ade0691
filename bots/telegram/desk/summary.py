"""The queue summary kept in the desk's General topic (one message, edited in place)."""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

PRIORITY_MARK = {"urgent": "🔴", "high": "🟠", "normal": "🟡", "low": "⚪"}
SHOWN = 15
DESK_QUEUE_SCAN = 2000  # with several desks: how much of the queue is split between them


@dataclass(frozen=True, slots=True)
class QueueLine:
    conversation: str
    name: str
    priority: str
    reason: str
    queued_at: float
    escalated: bool = False


@dataclass(frozen=True, slots=True)
class DeskSnapshot:
    queue: list[QueueLine]  # the first SHOWN of the queue
    assigned: int
    online: list[str]
    queued: int = 0  # the whole queue's length (this desk's, with several)
    other_desks: dict[str, int] = field(default_factory=dict)  # name -> queue length


SummarySource = Callable[[], Awaitable[DeskSnapshot]]


def summary_text(snapshot: DeskSnapshot, now: float | None = None) -> str:
    now = time.time() if now is None else now
    queued = max(snapshot.queued, len(snapshot.queue))
    lines = [f"📋 Очередь: {queued} · в работе: {snapshot.assigned}"]
    lines.append("Операторы онлайн: " + (", ".join(snapshot.online) or "нет"))
    if snapshot.other_desks:
        lines.append("Другие столы: " + " · ".join(
            f"{name} — {count} в очереди" for name, count in snapshot.other_desks.items()))
    if snapshot.queue:
        lines.append("")
    for number, line in enumerate(snapshot.queue[:SHOWN], 1):
        waited = max(0, int(now - line.queued_at)) // 60
        mark = PRIORITY_MARK.get(line.priority, "🟡") + ("⏰" if line.escalated else "")
        lines.append(f"{number}. {mark} {line.name} · {line.reason} · ждёт {waited} мин")
    if queued > min(len(snapshot.queue), SHOWN):
        lines.append(f"… и ещё {queued - min(len(snapshot.queue), SHOWN)}")
    lines.append(f"\nОбновлено {time.strftime('%H:%M:%S', time.localtime(now))}")
    return "\n".join(lines)
