"""Customer ⇄ bot over Telegram, end to end: real aiogram, real Redis, the fake Bot API."""

from __future__ import annotations

import asyncio
import logging

import aiohttp
import pytest

from bots.delivery.policy import RetryPolicy
from bots.runtime import Tuning
from bots.settings import Settings
from bots.telegram.sender import SendLimits
from bots.telegram.webhook import SECRET_HEADER, WEBHOOK_PATH
from bots.turns import Brain
from fakes.telegram import FakeTelegram
from tests.conftest import FAKE_TOKEN
from tests.telegram_harness import running_bot, wait_until

USER = 5001
WEBHOOK_SECRET = "s3cret-token-0123456789"


async def test_start_then_a_slot_filling_flow(settings: Settings, brain: Brain) -> None:
    async with running_bot(settings, brain) as bot:
        bot.fake.push_update(bot.fake.text_update(USER, "/start", first_name="Анна"))
        (greeting,) = await bot.wait_texts(USER, 1)
        assert "Анна" in greeting
        start_message = bot.fake.messages_to(USER)[0]
        titles = [b["text"] for row in start_message["reply_markup"]["inline_keyboard"]
                  for b in row]
        assert "Где мой заказ" in titles

        (question,) = await bot.exchange(USER, "где мой заказ")
        assert "номер заказа" in question

        # Not an order number: the error, then the question again.
        error, again = await bot.exchange(USER, "12")
        assert "Не получилось распознать номер" in error and "номер заказа" in again

        (answer,) = await bot.exchange(USER, "1234567")
        assert "Заказ №1234567" in answer
        conv = await bot.conversation(USER)
        assert conv.state == "bot"
        assert conv.dialogue["slots"]["order_number"] == "1234567"


async def test_inline_button_starts_its_flow_and_the_query_is_answered(
    settings: Settings, brain: Brain
) -> None:
    async with running_bot(settings, brain) as bot:
        await bot.say(USER, "/start")
        await bot.wait_texts(USER, 1)
        keyboard = bot.fake.messages_to(USER)[0]["reply_markup"]["inline_keyboard"]
        data = next(b["callback_data"] for row in keyboard for b in row
                    if b["text"] == "Где мой заказ")
        bot.fake.push_update(bot.fake.callback_update(USER, data))
        texts = await bot.wait_texts(USER, 2)
        assert "номер заказа" in texts[1]
        await bot.fake.wait_for("answerCallbackQuery")


@pytest.mark.parametrize(
    ("text", "intent"),
    [
        ("здраствуйте, где мой зака?", "order_status"),
        ("скока стоит дотавка", "delivery_cost"),
        ("хочу вернуть товр", "return_item"),
        ("не праходит оплата картой", "payment_failed"),
        ("как с вами связатся", "contacts"),
    ],
)
async def test_questions_with_typos_get_the_right_answer(
    settings: Settings, brain: Brain, text: str, intent: str
) -> None:
    async with running_bot(settings, brain) as bot:
        await bot.say(USER, text)
        await bot.wait_texts(USER, 1)
        transcript = await bot.runtime.store.transcript(f"tg:{USER}")
        assert transcript[0]["intent"] == intent


async def test_two_misses_hand_off_and_the_bot_then_stays_silent(
    settings: Settings, brain: Brain
) -> None:
    async with running_bot(settings, brain) as bot:
        await bot.say(USER, "фыва пролд жэ")
        await bot.wait_texts(USER, 1)
        assert (await bot.conversation(USER)).state == "bot"
        await bot.say(USER, "какая погода будет на марсе в четверг")
        texts = await wait_until(
            lambda: bot.texts_to(USER), lambda got: any("в очереди" in t for t in got), 5,
            "the queue notice",
        )
        # the fallback flow's own words and the place in the queue come as one message
        assert len(texts) == 2 and "1-й в очереди" in texts[-1]
        assert texts[-1].startswith("Похоже, я не могу разобраться сам")
        conv = await bot.conversation(USER)
        assert conv.state == "queued"
        assert await bot.runtime.redis.zscore(bot.runtime.keys.queue(), f"tg:{USER}") is not None

        before = len(bot.texts_to(USER))
        await bot.say(USER, "где мой заказ")  # a human owns the conversation now
        await wait_until(lambda: bot.runtime.store.transcript(f"tg:{USER}"),
                         lambda t: t[-1].get("text") == "где мой заказ", 5, "the transcript")
        await asyncio.sleep(0.1)
        assert len(bot.texts_to(USER)) == before


async def test_explicit_request_for_a_person_hands_off(settings: Settings, brain: Brain) -> None:
    async with running_bot(settings, brain) as bot:
        await bot.say(USER, "позовите живого оператора")
        await wait_until(lambda: bot.conversation(USER), lambda conv: conv.state == "queued", 5,
                         "the handoff")
        journal = await bot.runtime.redis.xrange(bot.runtime.keys.journal())
        assert journal[-1][1]["reason"] == "customer_request"


async def test_an_update_delivered_again_after_a_crash_is_answered_once(
    settings: Settings, brain: Brain, caplog: pytest.LogCaptureFixture
) -> None:
    """The poller stored an update and died before confirming it; the next one gets it again."""
    caplog.set_level(logging.INFO)
    async with FakeTelegram(token=FAKE_TOKEN) as fake:
        async with running_bot(settings, brain, fake=fake, roles=frozenset({"ingress"})) as first:
            await wait_until(lambda: fake.is_long_polling, bool, 5, "the first long poll")
            # The call that would confirm the update fails, so Telegram still holds it.
            fake.fail_next("getUpdates", error_code=502, description="Bad Gateway")
            await first.say(USER, "спасибо")
            await wait_until(lambda: len(fake.calls_of("getUpdates")), lambda n: n >= 2, 5,
                             "the failed confirmation")
        async with running_bot(settings, brain, fake=fake) as second:
            await second.wait_texts(USER, 1)
            (later,) = await second.exchange(USER, "/start")
            assert later and len(second.texts_to(USER)) == 2
    assert any("duplicate event" in record.getMessage() for record in caplog.records)


async def test_non_text_messages_get_a_sensible_reply(settings: Settings, brain: Brain) -> None:
    async with running_bot(settings, brain) as bot:
        bot.fake.push_update(bot.fake.media_update(USER, "sticker"))
        (reply,) = await bot.wait_texts(USER, 1)
        assert "только текст" in reply


async def test_malformed_updates_and_forged_callbacks_are_logged_and_ignored(
    settings: Settings, brain: Brain, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING)
    async with running_bot(settings, brain) as bot:
        await bot.say(USER, "где мой заказ")
        await bot.wait_texts(USER, 1)
        before = await bot.conversation(USER)

        bot.fake.push_update({"message": {  # no date, no sender, a number for text
            "message_id": 77, "chat": {"id": USER, "type": "private"}, "text": 5}})
        bot.fake.push_update(bot.fake.callback_update(USER, "flow:start|AAAAAAAAAA"))
        bot.fake.push_update(bot.fake.callback_update(USER, "intent:request_human"))
        await bot.fake.wait_for("answerCallbackQuery", count=2)
        (answer,) = await bot.exchange(USER, "1234567")  # the question still waits
        assert "Заказ №1234567" in answer
        after = await bot.conversation(USER)
        assert after.state == "bot" and before.dialogue["flow"] == "order_status"
        answers = bot.fake.calls_of("answerCallbackQuery")
        assert all(call.params.get("show_alert") for call in answers[-2:])
    messages = " ".join(record.getMessage() for record in caplog.records)
    assert "update rejected" in messages
    assert "rejected callback data" in messages


async def test_429_retry_after_is_respected(settings: Settings, brain: Brain) -> None:
    async with running_bot(settings, brain) as bot:
        bot.fake.fail_next("sendMessage", error_code=429,
                           description="Too Many Requests: retry after 1", retry_after=1)
        await bot.say(USER, "спасибо")
        await bot.wait_texts(USER, 1, timeout=5)
        attempts = bot.fake.calls_of("sendMessage")
        assert len(attempts) == 2
        assert attempts[1].at - attempts[0].at >= 1.0


async def test_403_marks_the_customer_unreachable_without_retrying(
    settings: Settings, brain: Brain
) -> None:
    async with running_bot(settings, brain) as bot:
        bot.fake.block_user(USER)
        await bot.say(USER, "спасибо")
        conv = await wait_until(lambda: bot.conversation(USER), lambda c: c.unreachable, 5,
                                "the unreachable mark")
        assert "blocked" in conv.unreachable
        await asyncio.sleep(0.2)
        assert len(bot.fake.calls_of("sendMessage")) == 1
        journal = await bot.runtime.redis.xrange(bot.runtime.keys.journal())
        assert journal[-1][1]["action"] == "unreachable"


async def test_webhook_checks_the_secret_and_stores_before_answering(
    settings: Settings, brain: Brain
) -> None:
    async with running_bot(
        settings, brain, telegram_mode="webhook", telegram_webhook_secret=WEBHOOK_SECRET,
        telegram_webhook_url=f"http://127.0.0.1:{settings.http_port}",
    ) as bot:
        url = f"http://127.0.0.1:{settings.http_port}{WEBHOOK_PATH}"
        await bot.fake.wait_for("setWebhook")
        update = {**bot.fake.text_update(USER, "спасибо"), "update_id": 424242}
        async with aiohttp.ClientSession() as http:
            async with http.post(url, json=update, headers={SECRET_HEADER: "wrong"}) as wrong:
                assert wrong.status == 401
            async with http.post(url, json=update) as missing:
                assert missing.status == 401
            for _ in range(2):  # the second delivery is a duplicate
                async with http.post(url, json=update,
                                     headers={SECRET_HEADER: WEBHOOK_SECRET}) as right:
                    assert right.status == 200
            async with http.post(url, data=b"{oops", headers={SECRET_HEADER: WEBHOOK_SECRET}) \
                    as junk:
                assert junk.status == 400
        await bot.wait_texts(USER, 1)
        await asyncio.sleep(0.1)
        assert len(bot.texts_to(USER)) == 1


async def test_transient_errors_are_retried_then_delivered_once(
    settings: Settings, brain: Brain
) -> None:
    limits = SendLimits(retry=RetryPolicy(backoff_base=0.05))
    async with running_bot(settings, brain, tuning=Tuning(send_limits=limits)) as bot:
        bot.fake.fail_next("sendMessage", error_code=502, description="Bad Gateway", times=2)
        (reply,) = await bot.exchange(USER, "спасибо")
        assert reply
        attempts = bot.fake.calls_of("sendMessage")
        assert [call.status for call in attempts] == [502, 502, 200]


async def test_a_message_that_keeps_failing_is_journaled_not_lost_silently(
    settings: Settings, brain: Brain
) -> None:
    limits = SendLimits(retry=RetryPolicy(backoff_base=0.01, max_attempts=3))
    async with running_bot(settings, brain, tuning=Tuning(send_limits=limits)) as bot:
        bot.fake.fail_next("sendMessage", error_code=500, description="Internal Server Error",
                           times=3)
        await bot.say(USER, "спасибо")
        journal = await wait_until(
            lambda: bot.runtime.redis.xrange(bot.runtime.keys.journal()),
            lambda entries: any(e[1]["action"] == "delivery_failed" for e in entries), 5,
            "the delivery failure in the journal",
        )
        failure = next(e[1] for e in journal if e[1]["action"] == "delivery_failed")
        assert failure["conv"] == f"tg:{USER}" and "3 attempts" in failure["reason"]
