"""VK ingress: the Callback API endpoint and Bots Long Poll's `failed` recoveries."""

from __future__ import annotations

from bots.settings import Settings
from bots.turns import Brain
from fakes.vk import FakeVk
from handoff.keys import shard_of
from tests.telegram_harness import wait_until
from tests.vk_harness import CONFIRMATION, SECRET, VkBot, running_vk_bot

USER = 7101


async def stored_events(bot: VkBot, user: int) -> list[str]:
    """Event ids stored for the user's conversation, in order."""
    runtime = bot.runtime
    stream = runtime.keys.inbound_stream(shard_of(f"vk:{user}", runtime.settings.ingest_shards))
    return [fields["e"] for _id, fields in await runtime.redis.xrange(stream)
            if f'"vk:{user}"' in fields["e"]]


async def test_callback_confirmation_secret_and_a_repeated_event(
    settings: Settings, brain: Brain
) -> None:
    async with running_vk_bot(settings, brain, mode="callback") as bot:
        confirm = {"type": "confirmation", "group_id": bot.vk.group_id, "secret": SECRET}
        assert await bot.post(confirm) == (200, CONFIRMATION)
        # The code goes only to VK: not without the secret, not for an id that only equals ours
        assert (await bot.post({**confirm, "secret": ""}))[0] == 403
        assert (await bot.post({**confirm, "group_id": float(bot.vk.group_id)}))[0] == 403

        event = bot.vk.message_new(USER, "привет")
        forged = {**event, "secret": "guess"}
        assert (await bot.post(forged))[0] == 403
        assert (await bot.post({**event, "secret": SECRET, "group_id": 1}))[0] == 403
        assert await stored_events(bot, USER) == []  # refused: nothing stored, nothing sent

        body = bot.vk.callback_body(event, SECRET)
        assert await bot.post(body) == (200, "ok")
        assert await bot.post(body) == (200, "ok")  # VK delivering it again
        await bot.wait_sent(USER, 1)
        assert len(await stored_events(bot, USER)) == 1
        await bot.say(USER, "спасибо")
        await bot.wait_sent(USER, 2)
        assert len(bot.vk.sent_to(USER)) == 2  # the repeat was answered once


async def test_long_poll_recovers_from_failed_1_2_3_without_losing_events(
    settings: Settings, brain: Brain
) -> None:
    vk = FakeVk()
    async with vk, running_vk_bot(settings, brain, vk=vk) as bot:
        vk.add_user(USER, "Ира")
        await bot.say(USER, "привет")
        await bot.wait_sent(USER, 1)
        for failed, text in ((1, "спасибо"), (2, "как отменить заказ"), (3, "пока")):
            vk.fail_poll(failed)
            await bot.say(USER, text)
        texts = await bot.settled(USER, 4)
        assert len(await stored_events(bot, USER)) == 4
        assert len(texts) == len(bot.vk.sent_to(USER))  # each answered once
        # failed 2 and 3 asked for a new key (and 3 for a new ts): 1 + 2 servers in all
        await wait_until(lambda: len(vk.calls_of("groups.getLongPollServer")), lambda n: n >= 3,
                         2.0, "the long poll server requested again")
        assert len(vk.calls_of("groups.getLongPollServer")) == 3


async def test_a_malformed_event_is_skipped_and_its_batch_goes_on(
    settings: Settings, brain: Brain
) -> None:
    async with running_vk_bot(settings, brain) as bot:
        bot.vk.push({"type": "message_new", "object": {"message": {"peer_id": "x"}},
                     "group_id": bot.vk.group_id, "event_id": "bad"})
        bot.vk.push({"type": "message_new", "object": "junk"})
        await bot.say(USER, "привет")
        await bot.wait_sent(USER, 1)
        assert len(await stored_events(bot, USER)) == 1
