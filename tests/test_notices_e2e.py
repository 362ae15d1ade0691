"""A notice to 500 customers across Telegram and VK, under the platforms' limits, killed halfway
and resumed: the real bot (aiogram against the fake Bot API with its limits enforced, vk_api
against the fake VK API), real Redis."""

from __future__ import annotations

import asyncio
import os
import sys
import time
from pathlib import Path

from bots.settings import Settings
from bots.turns import Brain
from fakes.telegram import FakeTelegram
from handoff.events import Profile
from handoff.notice_run import NoticeRun, RunLimits
from handoff.notices import Notices, Segment
from tests.telegram_harness import settings_token, wait_until
from tests.vk_harness import VkBot, running_vk_bot

TG = list(range(10_001, 10_251))  # 250 Telegram customers
VK = list(range(20_001, 20_251))  # 250 VK customers
TEXT = "Завтра с 10 до 12 возможны задержки доставки. Заказы не потеряются."
SUPPORTBOT = Path(sys.executable).parent / "supportbot"
VK_RATE = 20  # messages.send a second for a community token (PLATFORMS.md)


async def seed(bot: VkBot, conv: str) -> None:
    """A customer who wrote before, committed the way the worker commits a turn."""
    store = bot.runtime.store
    await store.commit(await store.load(conv), shard_stream=bot.runtime.keys.inbound_stream(0),
                       group="workers", entry="", profile=Profile(user_id=conv.split(":")[1]),
                       clear_unreachable=True,
                       transcript=[{"at": time.time(), "dir": "in", "text": "привет"}])


def notices_to(bot: VkBot, notice: str) -> dict[str, int]:
    """Conversation -> copies of the notice the platforms received."""
    assert bot.telegram is not None
    got: dict[str, int] = {}
    for user in TG:
        count = sum(1 for m in bot.telegram.messages_to(user) if m.get("text") == notice)
        if count:
            got[f"tg:{user}"] = count
    for user in VK:
        count = sum(1 for m in bot.vk.sent_to(user) if m.text == notice)
        if count:
            got[f"vk:{user}"] = count
    return got


def busiest_second(moments: list[float]) -> int:
    ordered = sorted(moments)
    most, first = 0, 0
    for last, moment in enumerate(ordered):
        while moment - ordered[first] >= 1.0:
            first += 1
        most = max(most, last - first + 1)
    return most


async def test_a_notice_to_500_customers_killed_halfway_and_resumed(
    settings: Settings, brain: Brain, tmp_path: Path
) -> None:
    telegram = FakeTelegram(token=settings_token(settings), enforce_limits=True)
    await telegram.start()
    try:
        async with running_vk_bot(settings, brain, telegram=telegram) as bot:
            await _the_notice(bot, telegram, tmp_path)
    finally:
        await telegram.close()


async def _the_notice(bot: VkBot, telegram: FakeTelegram, workdir: Path) -> None:
    runtime = bot.runtime
    for user in VK:
        bot.vk.add_user(user, f"Клиент{user}")
    for conv in [f"tg:{u}" for u in TG] + [f"vk:{u}" for u in VK]:
        await seed(bot, conv)
    # Two customers opt out through the bot itself and are told so in their language.
    telegram.push_update(telegram.text_update(TG[0], "/stop"))
    await bot.say(VK[0], "/stop")
    assert "рассылок" in (await wait_until(lambda: telegram.messages_to(TG[0]), bool, 10,
                                           "the /stop confirmation"))[0]["text"]
    assert "рассылок" in (await bot.wait_texts(VK[0], 1, 10))[0]
    # One blocked the bot in Telegram, one forbade the community's messages in VK.
    telegram.block_user(TG[9])
    bot.vk.deny(VK[9])

    notices = Notices(runtime.redis, runtime.keys)
    preview = await notices.preview(Segment(), TEXT)
    assert (preview.count, preview.opted_out) == (500, 2)
    notice = await notices.create(Segment(), TEXT, "tg:900")

    def run() -> NoticeRun:
        return NoticeRun(runtime.redis, runtime.keys, runtime.scripts, notices, RunLimits())

    started = time.monotonic()
    # The supervisor's `supportbot notices resume` process is killed (SIGKILL) halfway.
    first = await asyncio.create_subprocess_exec(
        str(SUPPORTBOT), "notices", "resume", notice.id, cwd=workdir, env={
            "PATH": os.environ.get("PATH", ""), "HOME": str(workdir),
            "REDIS_URL": runtime.settings.redis_url or "",
            "REDIS_PREFIX": runtime.settings.redis_prefix, "DATA_DIR": str(workdir)},
        stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.DEVNULL)
    try:
        await wait_until(lambda: notices.get(notice.id),
                         lambda n: n is not None and n.decided >= 250, 60, "half the notice")
    finally:
        first.kill()
        await first.wait()
    killed = await notices.get(notice.id)
    assert killed is not None and killed.status == "sending" and killed.decided < 500

    resumed = asyncio.create_task(run().run(notice.id))  # `supportbot notices resume`
    # A customer who talks to the bot meanwhile is answered within seconds, not after the notice
    asked = time.monotonic()
    await bot.say(VK[7], "привет")
    await wait_until(lambda: [m for m in bot.vk.sent_to(VK[7]) if "Клиент" in m.text], bool,
                     8, "the bot's answer during the notice")
    answered = time.monotonic() - asked
    done = await resumed
    assert done.status == "done"
    assert (done.counts["sent"], done.counts["opted_out"]) == (498, 2)
    expected = {f"tg:{u}" for u in TG[1:]} | {f"vk:{u}" for u in VK[1:]}
    expected -= {f"tg:{TG[9]}", f"vk:{VK[9]}"}  # the platforms refuse these two
    await wait_until(lambda: notices_to(bot, done.text), lambda got: set(got) == expected,
                     60, "every reachable customer's notice")
    took = time.monotonic() - started
    got = notices_to(bot, done.text)
    assert set(got.values()) == {1}, "somebody got the notice twice"
    assert f"tg:{TG[0]}" not in got and f"vk:{VK[0]}" not in got  # they opted out

    # Within the platforms' limits the whole time
    assert telegram.limit_violations == []
    assert busiest_second([m.at for m in bot.vk.state.sent]) <= VK_RATE
    # The refusals mark the two unreachable: the notice counts them as not delivered
    await wait_until(lambda: notices.undelivered(notice.id), lambda n: len(n) == 2, 10,
                     "the refused ones marked unreachable")
    print(f"\n500 customers (498 sent, 2 opted out): {took:.1f} s to deliver, killed at "
          f"{killed.decided} decided; a live customer answered in {answered:.1f} s meanwhile")

    # The notice is in the transcript, and an answer to it goes through the normal flow.
    customer = TG[5]
    transcript = await runtime.store.transcript(f"tg:{customer}")
    assert transcript[-1]["notice"] == notice.id and transcript[-1]["text"] == done.text
    before = len(telegram.messages_to(customer))
    telegram.push_update(telegram.text_update(customer, "где мой заказ?"))
    answers = await wait_until(lambda: telegram.messages_to(customer)[before:], bool, 10,
                               "the bot's answer to a reply to the notice")
    assert "номер заказа" in answers[0]["text"]
    vk_customer = VK[5]
    await bot.say(vk_customer, "привет")
    texts = await bot.wait_texts(vk_customer, 2, 10)
    assert texts[0] == done.text and "Клиент" in texts[1]
