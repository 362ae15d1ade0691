"""A running bot with the VK channel (real vk_api, real Redis) against the fake VK API, and
optionally the fake Bot API for the Telegram desk, for end-to-end tests."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import aiohttp

from bots.runtime import Runtime, Tuning
from bots.settings import Settings
from bots.turns import Brain
from bots.vk.callback import CALLBACK_PATH
from fakes.telegram import FakeTelegram
from fakes.vk import FakeVk, Sent
from tests.telegram_harness import wait_until

CONFIRMATION = "c0nfirm-me"
SECRET = "vk-callback-secret"


@dataclass
class VkBot:
    vk: FakeVk
    telegram: FakeTelegram | None
    runtime: Runtime
    stop: asyncio.Event
    task: asyncio.Task[None]

    @property
    def callback_url(self) -> str:
        settings = self.runtime.settings
        return f"http://{settings.http_host}:{settings.http_port}{CALLBACK_PATH}"

    async def deliver(self, event: dict[str, Any]) -> None:
        """An event the way the bot is set up to get it: long poll, or a Callback API POST."""
        if self.runtime.settings.vk_mode == "longpoll":
            self.vk.push(event)
            return
        status, text = await self.post(self.vk.callback_body(event, SECRET))
        assert (status, text) == (200, "ok"), (status, text)

    async def post(self, body: dict[str, Any]) -> tuple[int, str]:
        async with aiohttp.ClientSession() as session, \
                session.post(self.callback_url, json=body) as response:
            return response.status, await response.text()

    async def say(self, user: int, text: str, **kwargs: Any) -> None:
        await self.deliver(self.vk.message_new(user, text, **kwargs))

    async def wait_sent(self, user: int, count: int, timeout: float = 5.0) -> list[Sent]:
        """The user's messages once at least `count` arrived (fails on timeout)."""
        return await wait_until(lambda: self.vk.sent_to(user), lambda got: len(got) >= count,
                                timeout, f"{count} VK messages to {user}")

    async def wait_texts(self, user: int, count: int, timeout: float = 5.0) -> list[str]:
        return [m.text for m in await self.wait_sent(user, count, timeout)]

    async def settled(self, user: int, said: int, timeout: float = 5.0) -> list[str]:
        """Once the bot took `said` messages from the user and VK got every reply to them."""
        conv = f"vk:{user}"

        async def replies() -> int:
            transcript = await self.runtime.store.transcript(conv, last=500)
            if sum(1 for entry in transcript if entry["dir"] == "in") < said:
                return -1
            return sum(1 for entry in transcript if entry["dir"] in ("out", "system")
                       and not entry.get("text", "").startswith("handoff:"))

        await wait_until(replies, lambda n: n >= 0, timeout, f"{said} messages taken")
        return await self.wait_texts(user, await replies(), timeout)

    async def conversation(self, user: int) -> Any:
        return await self.runtime.store.load(f"vk:{user}")


@contextlib.asynccontextmanager
async def running_vk_bot(
    settings: Settings, brain: Brain, *, telegram: FakeTelegram | None = None,
    vk: FakeVk | None = None, mode: str = "longpoll", tuning: Tuning | None = None,
    **overrides: Any,
) -> AsyncIterator[VkBot]:
    """VK alone (no `telegram`), or VK beside Telegram with its desk (pass the fake)."""
    own_vk = vk is None
    vk = vk or FakeVk()
    if own_vk:
        await vk.start()
    values = settings.model_dump()
    values.update(vk_token=vk.token, vk_group_id=vk.group_id, vk_api_url=vk.url,
                  vk_mode=mode, vk_confirmation=CONFIRMATION, vk_secret=SECRET, vk_poll_wait=1)
    if telegram is None:
        values.update(telegram_bot_token=None)
    else:
        values.update(telegram_api_url=telegram.url)
    values.update(overrides)
    configured = Settings(_env_file=None, **values)  # type: ignore[call-arg]
    runtime = await Runtime.open(configured, brain=brain, tuning=tuning or Tuning())
    stop = asyncio.Event()
    task = asyncio.create_task(runtime.run(stop, {"ingress", "worker", "sender"}))
    try:
        if mode == "callback":  # the HTTP server is up once it answers the confirmation
            bot = VkBot(vk, telegram, runtime, stop, task)
            await wait_until(lambda: _answers(bot), bool, 5.0, "the Callback API endpoint")
        yield VkBot(vk, telegram, runtime, stop, task)
    finally:
        stop.set()
        with contextlib.suppress(asyncio.CancelledError):
            await asyncio.wait_for(task, 20)
        await runtime.close()
        if own_vk:
            await vk.close()


async def _answers(bot: VkBot) -> bool:
    if bot.task.done():
        bot.task.result()  # the bot failed to start: say why
    try:
        status, _ = await bot.post({"type": "confirmation", "group_id": bot.vk.group_id,
                                    "secret": SECRET})
    except aiohttp.ClientError:
        return False
    return status == 200
