"""Proactive notices on real Redis: segments, the snapshot, exactly-once decisions, opt-out.

The run against both platforms (500 customers, killed halfway and resumed) is in
tests/test_notices_e2e.py.
"""

from __future__ import annotations

import asyncio
import json
import os
import time
from pathlib import Path

import pytest
import redis.asyncio as aioredis

from bots.notice_optout import FLAG, choice
from handoff.conversations import ConversationStore, Limits
from handoff.events import InboundEvent, OutboundMessage, Profile
from handoff.keys import Keys
from handoff.notice_run import NoticeRun, RunLimits, backlog
from handoff.notices import Notice, NoticeError, Notices, Segment
from handoff.scripts import Scripts
from tests.telegram_harness import wait_until

TEXT = "Завтра с 10 до 12 возможны задержки доставки."


async def customer_wrote(store: ConversationStore, keys: Keys, conv: str, *, at: float = 0.0,
                         tags: str = "", flag: str = "") -> None:
    """A customer's turn committed the way the worker commits it (commit_turn.lua)."""
    loaded = await store.load(conv)
    await store.commit(loaded, shard_stream=keys.inbound_stream(0), group="workers", entry="",
                       profile=Profile(user_id=conv.split(":")[1]), clear_unreachable=True,
                       transcript=[{"at": time.time(), "dir": "in", "text": "привет"}],
                       flag=flag)
    if at:  # as if they wrote then
        await store._redis.zadd(keys.customers(), {conv: at})
    if tags:
        await store._redis.hset(keys.conversation(conv), "handoff_tags", tags)


@pytest.fixture
def store(redis: aioredis.Redis, keys: Keys) -> ConversationStore:
    return ConversationStore(redis, keys, Scripts(redis), Limits())


@pytest.fixture
def notices(redis: aioredis.Redis, keys: Keys) -> Notices:
    return Notices(redis, keys)


def run_of(redis: aioredis.Redis, keys: Keys, notices: Notices) -> NoticeRun:
    return NoticeRun(redis, keys, Scripts(redis), notices, RunLimits(batch=3, max_backlog=1000))


async def outbox_texts(redis: aioredis.Redis, keys: Keys, channel: str) -> list[OutboundMessage]:
    entries = await redis.xrange(keys.outbox(channel, "customer"))
    return [OutboundMessage.from_json(fields["m"]) for _, fields in entries]


async def test_a_customers_turn_indexes_them_by_when_they_wrote(
    store: ConversationStore, keys: Keys, redis: aioredis.Redis
) -> None:
    before = time.time()
    await customer_wrote(store, keys, "tg:1")
    score = await redis.zscore(keys.customers(), "tg:1")
    assert score is not None and score >= before - 1
    # a block is not the customer writing: it leaves the index alone
    conv = await store.load("tg:1")
    await redis.zadd(keys.customers(), {"tg:1": 5})
    await store.commit(conv, shard_stream=keys.inbound_stream(0), group="workers", entry="",
                       unreachable="blocked by the customer")
    assert await redis.zscore(keys.customers(), "tg:1") == 5


async def test_segments_combine_channel_period_tag_and_ids(
    store: ConversationStore, keys: Keys, notices: Notices
) -> None:
    now = time.time()
    await customer_wrote(store, keys, "tg:1", at=now - 3600, tags="vip,delivery")
    await customer_wrote(store, keys, "tg:2", at=now - 10 * 86400, tags="delivery")
    await customer_wrote(store, keys, "vk:3", at=now - 60, tags="vip")
    await customer_wrote(store, keys, "vk:4", at=now - 60, flag=FLAG)

    async def who(**segment: object) -> list[str]:
        return sorted((await notices.preview(Segment(**segment), TEXT)).recipients)  # type: ignore[arg-type]

    assert await who() == ["tg:1", "tg:2", "vk:3", "vk:4"]
    assert await who(channel="tg") == ["tg:1", "tg:2"]
    assert await who(since=now - 7 * 86400) == ["tg:1", "vk:3", "vk:4"]
    assert await who(tag="vip") == ["tg:1", "vk:3"]
    assert await who(tag="delivery", since=now - 7 * 86400) == ["tg:1"]
    assert await who(ids=("tg:2", "vk:3"), channel="vk") == ["vk:3"]
    assert await who(ids=("tg:2", "vk:3"), since=now - 86400) == ["vk:3"]
    preview = await notices.preview(Segment(ids=("tg:1", "tg:999")), TEXT)
    assert preview.recipients == ["tg:1"] and preview.unknown == ["tg:999"]
    everyone = await notices.preview(Segment(), TEXT)
    assert (everyone.count, everyone.opted_out) == (4, 1)
    assert everyone.text.startswith(TEXT) and everyone.text.endswith("отправьте /stop.")


async def test_a_notice_is_decided_once_per_customer_and_skips_who_opted_out(
    store: ConversationStore, keys: Keys, notices: Notices, redis: aioredis.Redis
) -> None:
    for conv in ("tg:1", "tg:2", "vk:3", "vk:4", "vk:5"):
        await customer_wrote(store, keys, conv, flag=FLAG if conv == "vk:4" else "")
    await redis.hset(keys.conversation("tg:2"), "unreachable", "VK error 901")
    await redis.hset(keys.conversation("vk:5"), "banned", "1")
    notice = await notices.create(Segment(), TEXT, "tg:900")
    assert notice.total == 5
    # somebody writes after the notice was made: not a recipient (the preview's count stands)
    await customer_wrote(store, keys, "tg:6")

    done = await run_of(redis, keys, notices).run(notice.id)
    assert done.status == "done"
    assert (done.counts["sent"], done.counts["opted_out"], done.counts["unreachable"],
            done.counts["banned"]) == (2, 1, 1, 1)
    again = await run_of(redis, keys, notices).run(notice.id)  # a resume after the end
    assert again.counts == done.counts
    sent = await outbox_texts(redis, keys, "tg") + await outbox_texts(redis, keys, "vk")
    assert sorted(m.conversation for m in sent) == ["tg:1", "vk:3"]
    assert all(m.lane == "customer" and m.text == notice.text for m in sent)
    transcript = await store.transcript("tg:1")
    assert transcript[-1]["text"] == notice.text and transcript[-1]["notice"] == notice.id
    assert not [e for e in await store.transcript("vk:4") if e.get("notice")]
    assert await notices.outcomes(notice.id) == {
        "tg:1": "sent", "tg:2": "unreachable", "vk:3": "sent", "vk:4": "opted_out",
        "vk:5": "banned"}
    assert [n.id for n in await notices.latest()] == [notice.id]


async def test_a_linked_customer_gets_it_where_they_wrote_last(
    store: ConversationStore, keys: Keys, notices: Notices, redis: aioredis.Redis
) -> None:
    await customer_wrote(store, keys, "tg:1")
    await redis.hset(keys.conversation("tg:1"), mapping={"linked": "vk:1", "route": "vk:1"})
    notice = await notices.create(Segment(ids=("tg:1",)), TEXT, "cli")
    await run_of(redis, keys, notices).run(notice.id)
    (message,) = await outbox_texts(redis, keys, "vk")
    assert (message.conversation, message.route) == ("tg:1", "vk:1")
    assert await outbox_texts(redis, keys, "tg") == []


async def test_a_cancelled_notice_sends_nothing_more(
    store: ConversationStore, keys: Keys, notices: Notices, redis: aioredis.Redis
) -> None:
    await customer_wrote(store, keys, "tg:1")
    notice = await notices.create(Segment(), TEXT, "cli")
    await notices.set_status(notice.id, "cancelled")
    with pytest.raises(NoticeError):
        await run_of(redis, keys, notices).run(notice.id)
    assert await outbox_texts(redis, keys, "tg") == []


async def test_refusals(store: ConversationStore, keys: Keys, notices: Notices) -> None:
    with pytest.raises(NoticeError, match="empty"):
        await notices.preview(Segment(), "  ")
    with pytest.raises(NoticeError, match="at most"):
        await notices.preview(Segment(), "x" * 5000)
    with pytest.raises(NoticeError, match="nobody"):
        await notices.create(Segment(channel="vk"), TEXT, "cli")


async def test_the_backlog_counts_unread_and_unacknowledged_entries(
    redis: aioredis.Redis, keys: Keys
) -> None:
    stream = keys.outbox("tg", "customer")
    assert await backlog(redis, stream, 10) == 0
    for n in range(5):
        await redis.xadd(stream, {"m": json.dumps({"n": n})})
    assert await backlog(redis, stream, 10) == 5  # no sender yet
    await redis.xgroup_create(stream, "senders", id="0")
    await redis.xreadgroup("senders", "sender", {stream: ">"}, count=2)
    assert await backlog(redis, stream, 10) == 5
    entries = await redis.xrange(stream, count=2)
    await redis.xack(stream, "senders", *[entry_id for entry_id, _ in entries])
    assert await backlog(redis, stream, 10) == 3


def test_the_opt_out_commands() -> None:
    def event(text: str) -> InboundEvent:
        return InboundEvent("e", "tg:1", "command", Profile("1"), text=text)

    assert choice(event("/stop")) == "off"
    assert choice(event("/stop@shop_bot")) == "off"
    assert choice(event("/notices off")) == "off"
    assert choice(event("/notices on")) == "on"
    assert choice(event("/notices")) == ""
    assert choice(event("/start")) == ""
    assert choice(InboundEvent("e", "tg:1", "text", Profile("1"), text="/stop")) == ""


async def test_the_cli_previews_sends_resumes_and_shows(
    store: ConversationStore, keys: Keys, redis: aioredis.Redis, redis_url: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from typer.testing import CliRunner

    from bots.cli.common import console
    from bots.cli.main import app

    now = time.time()
    await customer_wrote(store, keys, "tg:1", at=now - 3600, tags="vip")
    await customer_wrote(store, keys, "vk:2", at=now - 60, tags="vip", flag=FLAG)
    await customer_wrote(store, keys, "vk:3", at=now - 30 * 86400, tags="vip")
    monkeypatch.setenv("REDIS_URL", redis_url)
    monkeypatch.setenv("REDIS_PREFIX", keys.prefix)
    monkeypatch.setattr(console, "width", 200)
    runner = CliRunner()

    def cli(*args: str) -> str:
        result = runner.invoke(app, ["notices", *args])
        assert result.exit_code == 0, result.output
        return result.output

    segment = ("--tag", "vip", "--since", "7d", "--text", TEXT)
    shown = await asyncio.to_thread(cli, "preview", *segment)
    assert "2 recipient(s)" in shown and "1 opted out" in shown and TEXT in shown
    sent = await asyncio.to_thread(cli, "send", *segment, "--by", "tg:900", "--yes")
    assert "done" in sent and "sent 1" in sent and "opted out 1" in sent
    (notice,) = await Notices(redis, keys).latest()
    assert [m.conversation for m in await outbox_texts(redis, keys, "tg")] == ["tg:1"]
    assert await outbox_texts(redis, keys, "vk") == []
    resumed = await asyncio.to_thread(cli, "resume", notice.id)
    assert "sent 1" in resumed and len(await outbox_texts(redis, keys, "tg")) == 1
    listed = await asyncio.to_thread(cli, "list")
    assert notice.id in listed and "tag vip" in listed
    assert "total 2" in await asyncio.to_thread(cli, "show", notice.id)
    refused = await asyncio.to_thread(runner.invoke, app,
                                      ["notices", "send", "--channel", "ok", "--text", "x"])
    assert refused.exit_code != 0 and "unknown channel" in refused.output


async def test_a_stopped_run_is_resumed_where_it_stopped(
    store: ConversationStore, keys: Keys, notices: Notices, redis: aioredis.Redis
) -> None:
    for n in range(10):
        await customer_wrote(store, keys, f"tg:{n}")
    notice = await notices.create(Segment(), TEXT, "cli")
    stop = asyncio.Event()
    seen: list[int] = []

    def progress(now: Notice) -> None:
        seen.append(now.decided)
        if now.decided >= 3:
            stop.set()  # Ctrl-C after the first batch

    run = NoticeRun(redis, keys, Scripts(redis), notices, RunLimits(batch=3), progress)
    stopped = await run.run(notice.id, stop)
    assert (stopped.status, stopped.decided) == ("sending", 3)
    done = await run_of(redis, keys, notices).run(notice.id)
    assert (done.status, done.counts["sent"]) == ("done", 10)
    assert len(await outbox_texts(redis, keys, "tg")) == 10


async def test_reindex_adds_the_customers_who_wrote_before_the_index(
    store: ConversationStore, keys: Keys, notices: Notices, redis: aioredis.Redis
) -> None:
    for conv in ("tg:1", "vk:2", "web:3"):
        await customer_wrote(store, keys, conv)
    await redis.hset(keys.conversation("tg:1"), "updated_at", 1000)
    await redis.hset(keys.conversation("tg:4"), mapping={"version": 1})  # never wrote: no profile
    await redis.delete(keys.customers())
    assert await notices.reindex() == 3
    assert await redis.zscore(keys.customers(), "tg:1") == 1000
    assert await notices.reindex() == 0
    assert sorted((await notices.preview(Segment(), TEXT)).recipients) == ["tg:1", "vk:2", "web:3"]


async def test_ctrl_c_stops_the_cli_between_batches_and_resume_finishes(
    store: ConversationStore, keys: Keys, notices: Notices, redis: aioredis.Redis,
    redis_url: str, tmp_path: Path,
) -> None:
    import signal
    import sys

    for n in range(100):
        await customer_wrote(store, keys, f"tg:{n}")
    notice = await notices.create(Segment(), TEXT, "cli")
    env = {"PATH": os.environ.get("PATH", ""), "HOME": str(tmp_path), "REDIS_URL": redis_url,
           "REDIS_PREFIX": keys.prefix, "DATA_DIR": str(tmp_path)}
    cli = await asyncio.create_subprocess_exec(
        str(Path(sys.executable).parent / "supportbot"), "notices", "resume", notice.id,
        cwd=tmp_path, env=env, stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.DEVNULL)
    # No sender runs: the outbox fills to its bound and the run waits there
    await wait_until(lambda: notices.get(notice.id),
                     lambda n: n is not None and n.decided >= 60, 20, "the outbox full")
    cli.send_signal(signal.SIGINT)
    out, _ = await asyncio.wait_for(cli.communicate(), 10)
    assert cli.returncode == 0 and b"Stopped" in out
    stopped = await notices.get(notice.id)
    assert stopped is not None and stopped.status == "sending" and stopped.decided < 100
    await redis.delete(keys.outbox("tg", "customer"))  # as if the sender delivered them
    done = await run_of(redis, keys, notices).run(notice.id)
    assert (done.status, done.counts["sent"]) == ("done", 100)
