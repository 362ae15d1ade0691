"""The desk's queue on a fake clock, without aiogram: priorities, order per topic, coalesced
renders, merged customer texts, albums, and the summary's own schedule."""

from __future__ import annotations

from bots.desk.queue import MERGED_LIMIT, DeskQueue
from handoff.events import CopyOf, OutboundMessage
from handoff.outbox import OutboxItem


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def item(conv: str, kind: str = "text", *, priority: int = 12, text: str = "",
         coalesce: str = "", said: bool = False, album: str = "") -> OutboxItem:
    message = OutboundMessage(
        conversation=conv, kind=kind, lane="desk", text=text, priority=priority,  # type: ignore[arg-type]
        coalesce=coalesce, said_at=1.0 if said else 0.0,
        copy=CopyOf(1, 1, album) if kind == "copy" else None)
    return OutboxItem("desk", f"{conv}-{kind}-{text}", message)


def taken_texts(queue: DeskQueue) -> list[str]:
    order = []
    while (queued := queue.take()[0]) is not None:
        order.append(queued.item.message.text)
        queue.done(queued)
    return order


def test_urgent_first_then_by_arrival_and_a_spinner_before_all() -> None:
    queue = DeskQueue(Clock())
    queue.push(item("tg:1", text="normal card", priority=11))
    queue.push(item("tg:2", text="urgent card", priority=1))
    queue.push(item("tg:3", text="another normal", priority=11))
    queue.push(item("tg:4", "callback_answer", text="spinner", priority=50))
    assert taken_texts(queue) == ["spinner", "urgent card", "normal card", "another normal"]


def test_one_conversation_is_never_delivered_twice_at_once() -> None:
    queue = DeskQueue(Clock())
    queue.push(item("tg:1", text="first"))
    queue.push(item("tg:1", text="second"))
    queue.push(item("tg:2", text="other"))
    first, _ = queue.take()
    assert first is not None and first.item.message.text == "first"
    other, _ = queue.take()  # tg:1 is busy: the next one goes past it
    assert other is not None and other.item.message.text == "other"
    assert queue.take() == (None, [])
    queue.done(first)
    second, _ = queue.take()
    assert second is not None and second.item.message.text == "second"


def test_only_the_latest_render_of_a_card_is_posted() -> None:
    queue = DeskQueue(Clock())
    for number in range(3):
        queue.push(item("tg:1", "card", text=f"render {number}", coalesce="card:tg:1"))
    latest, superseded = queue.take()
    assert latest is not None and latest.item.message.text == "render 2"
    assert [i.message.text for i in superseded] == ["render 0", "render 1"]


def test_a_run_of_customer_texts_is_taken_together_and_stops_at_anything_else() -> None:
    queue = DeskQueue(Clock())
    for number in range(4):
        queue.push(item("tg:1", "copy", text=f"text {number}", said=True))
    queue.push(item("tg:1", "copy", text="", said=True))  # a photo: not mergeable
    queue.push(item("tg:1", "copy", text="after the photo", said=True))
    queue.push(item("tg:2", "copy", text="someone else", said=True))
    first, _ = queue.take()
    assert first is not None
    run = queue.run_behind(first.item)
    assert [i.message.text for i in run] == ["text 1", "text 2", "text 3"]
    queue.done(first)
    assert taken_texts(queue) == ["", "after the photo", "someone else"]


def test_a_merged_post_stays_under_telegrams_length() -> None:
    queue = DeskQueue(Clock())
    for _ in range(5):
        queue.push(item("tg:1", "copy", text="ы" * 1500, said=True))
    first, _ = queue.take()
    assert first is not None
    run = queue.run_behind(first.item)
    assert len(run) == 1 and sum(len(i.message.text) for i in [first.item, *run]) < MERGED_LIMIT


def test_album_parts_are_taken_with_the_first() -> None:
    queue = DeskQueue(Clock())
    queue.push(item("tg:1", "copy", text="1", album="A"))
    queue.push(item("tg:1", "copy", text="2", album="A"))
    queue.push(item("tg:1", "copy", text="other", album="B"))
    first, _ = queue.take()
    assert first is not None
    assert [i.message.text for i in queue.album_parts(first.item)] == ["2"]
    assert len(queue) == 1


def test_the_summary_has_its_own_schedule() -> None:
    clock = Clock()
    queue = DeskQueue(clock, every=20, every_busy=60)
    queue.push(item("desk:1", "summary", priority=99))
    assert queue.summary_due() is not None  # the first render goes at once
    queue.push(item("desk:1", "summary", priority=99))
    assert queue.summary_due() is None and queue.summary_wait() == 20
    clock.now += 20
    assert queue.summary_due() is not None
    queue.push(item("tg:1", "card", text="a card waits"))
    queue.push(item("desk:1", "summary", priority=99))
    clock.now += 20
    assert queue.summary_due() is None  # cards wait: once a minute
    clock.now += 40
    assert queue.summary_due() is not None
    queue.push(item("desk:1", "summary", priority=0))  # an operator's /queue: now
    assert queue.summary_due() is not None
