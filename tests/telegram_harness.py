"""A running bot (real aiogram, real Redis) against the fake Bot API, for end-to-end tests."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from typing import Any

from bots.runtime import Runtime, Tuning
from bots.settings import Settings
from bots.turns import Brain
from tests.fakes.telegram import FakeTelegram

ALL_ROLES = frozenset({"ingress", "worker", "sender"})


@dataclass
class BotUnderTest:
    fake: FakeTelegram
    runtime: Runtime
    stop: asyncio.Event
    task: asyncio.Task[None]

    def texts_to(self, chat_id: int) -> list[str]:
        return [message.get("text", "") for message in self.fake.messages_to(chat_id)]

    async def wait_texts(
        self, chat_id: int, count: int, timeout: float = 5.0
    ) -> list[str]:
        """The chat's messages once at least `count` arrived (fails on timeout)."""
        return await wait_until(lambda: self.texts_to(chat_id), lambda got: len(got) >= count,
                                timeout, f"{count} messages to chat {chat_id}")

    async def say(self, user_id: int, text: str, **kwargs: Any) -> dict[str, Any]:
        return self.fake.push_update(self.fake.text_update(user_id, text, **kwargs))

    async def conversation(self, user_id: int) -> Any:
        return await self.runtime.store.load(f"tg:{user_id}")


async def wait_until(
    probe: Callable[[], Any], done: Callable[[Any], bool], timeout: float, what: str
) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        value = probe()
        if asyncio.iscoroutine(value):
            value = await value
        if done(value):
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}; last value: {value!r}")
        await asyncio.sleep(0.01)


@contextlib.asynccontextmanager
async def running_bot(
    settings: Settings, brain: Brain, *, fake: FakeTelegram | None = None,
    roles: frozenset[str] = ALL_ROLES, tuning: Tuning | None = None, **overrides: Any,
) -> AsyncIterator[BotUnderTest]:
    own_fake = fake is None
    fake = fake or FakeTelegram(token=settings_token(settings))
    if own_fake:
        await fake.start()
    values = settings.model_dump()
    values.update(telegram_api_url=fake.url, **overrides)
    configured = Settings(_env_file=None, **values)  # type: ignore[call-arg]
    runtime = await Runtime.open(configured, brain=brain, tuning=tuning or Tuning())
    stop = asyncio.Event()
    task = asyncio.create_task(runtime.run_telegram(stop, set(roles)))
    try:
        yield BotUnderTest(fake, runtime, stop, task)
    finally:
        stop.set()
        with contextlib.suppress(asyncio.CancelledError):
            await asyncio.wait_for(task, 10)
        await runtime.close()
        if own_fake:
            await fake.close()


def settings_token(settings: Settings) -> str:
    assert settings.telegram_bot_token is not None
    return settings.telegram_bot_token.get_secret_value()
