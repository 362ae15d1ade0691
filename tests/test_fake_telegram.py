"""The fake Telegram Bot API, driven by the real aiogram Bot over HTTP."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from typing import Any

import pytest
from aiogram import Bot, Dispatcher
from aiogram.client.session.aiohttp import AiohttpSession
from aiogram.client.telegram import TelegramAPIServer
from aiogram.exceptions import (
    TelegramBadRequest,
    TelegramConflictError,
    TelegramForbiddenError,
    TelegramMigrateToChat,
    TelegramNotFound,
    TelegramRetryAfter,
    TelegramUnauthorizedError,
)
from aiogram.methods import SendMessage
from aiogram.types import (
    BufferedInputFile,
    InlineKeyboardButton,
    InlineKeyboardMarkup,
    InputMediaPhoto,
    Message,
)
from aiogram.webhook.aiohttp_server import SimpleRequestHandler
from aiohttp import web

from fakes.telegram import FakeTelegram, WaitTimeout

OPERATORS = -1001234567890
USER = 4242


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


class LoopbackSession(AiohttpSession):
    """aiogram's AiohttpSession, minus the 250 ms sleep its close() spends letting SSL
    connections drain; plain HTTP on loopback has none. Requests are encoded unchanged."""

    async def close(self) -> None:
        if self._session is not None and not self._session.closed:
            await self._session.close()


def make_bot(fake: FakeTelegram, token: str | None = None) -> Bot:
    api = TelegramAPIServer.from_base(fake.url)
    return Bot(token or fake.token, session=LoopbackSession(api=api))


@pytest.fixture
async def fake() -> AsyncIterator[FakeTelegram]:
    async with FakeTelegram() as server:
        yield server


@pytest.fixture
async def bot(fake: FakeTelegram) -> AsyncIterator[Bot]:
    client = make_bot(fake)
    yield client
    await client.session.close()


async def serve(app: web.Application) -> tuple[web.AppRunner, str]:
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", 0).start()
    return runner, f"http://127.0.0.1:{runner.addresses[0][1]}"


async def test_get_me_and_unknown_method(fake: FakeTelegram, bot: Bot) -> None:
    me = await bot.get_me()
    assert (me.id, me.is_bot, me.username) == (123456, True, "supportbot_test_bot")
    assert me.can_join_groups is True
    with pytest.raises(TelegramNotFound, match="Not Found"):
        await bot.get_sticker_set(name="nope")  # not implemented by the fake
    assert [c.method for c in fake.calls] == ["getMe", "getStickerSet"]
    assert fake.calls[0].response == {"ok": True, "result": fake.get_me()}


async def test_wrong_token_is_unauthorized(fake: FakeTelegram) -> None:
    stranger = make_bot(fake, token="999:WRONG")
    try:
        with pytest.raises(TelegramUnauthorizedError, match="Unauthorized"):
            await stranger.get_me()
    finally:
        await stranger.session.close()
    assert fake.calls[0].status == 401


async def test_send_message_is_stored_with_ids_per_chat(fake: FakeTelegram, bot: Bot) -> None:
    keyboard = InlineKeyboardMarkup(
        inline_keyboard=[[InlineKeyboardButton(text="Да", callback_data="yes")]]
    )
    first = await bot.send_message(USER, "Здравствуйте!", reply_markup=keyboard)
    second = await bot.send_message(USER, "123")  # a numeric text must stay a string
    other = await bot.send_message(USER + 1, "Другой чат")
    assert (first.message_id, second.message_id, other.message_id) == (1, 2, 1)
    assert first.reply_markup and first.reply_markup.model_dump() == keyboard.model_dump()
    assert first.from_user and first.from_user.is_bot
    stored = fake.messages_to(USER)
    assert [m["text"] for m in stored] == ["Здравствуйте!", "123"]
    assert stored[0]["reply_markup"] == {
        "inline_keyboard": [[{"text": "Да", "callback_data": "yes"}]]
    }
    assert fake.calls_of("sendMessage")[1].params == {"chat_id": USER, "text": "123"}

    with pytest.raises(TelegramBadRequest, match="message text is empty"):
        await bot.send_message(USER, "")  # aiogram drops "" from the form altogether
    with pytest.raises(TelegramBadRequest, match="message is too long"):
        await bot.send_message(USER, "я" * 4097)
    assert len(fake.messages_to(USER)) == 2


async def test_edit_and_delete_update_the_store(fake: FakeTelegram, bot: Bot) -> None:
    sent = await bot.send_message(USER, "Ваш вопрос принят")
    edited = await bot.edit_message_text("Оператор отвечает", chat_id=USER, message_id=1)
    assert isinstance(edited, Message) and edited.edit_date is not None
    assert fake.messages_to(USER)[0]["text"] == "Оператор отвечает"
    with pytest.raises(TelegramBadRequest, match="message is not modified"):
        await bot.edit_message_text("Оператор отвечает", chat_id=USER, message_id=1)
    assert await bot.delete_message(USER, sent.message_id) is True
    assert fake.messages_to(USER) == []
    with pytest.raises(TelegramBadRequest, match="message to delete not found"):
        await bot.delete_message(USER, sent.message_id)


async def test_long_poll_returns_on_push_and_offset_confirms(fake: FakeTelegram, bot: Bot) -> None:
    poll = asyncio.create_task(bot.get_updates(offset=0, timeout=10))
    await fake.wait_until(lambda: fake.is_long_polling)
    pushed = fake.push_update(fake.text_update(USER, "/start", username="ivan"))
    started = time.perf_counter()
    [update] = await poll
    assert time.perf_counter() - started < 0.5
    assert update.update_id == pushed["update_id"] == 1
    assert update.message and update.message.text == "/start"
    assert update.message.entities and update.message.entities[0].type == "bot_command"
    assert update.message.from_user and update.message.from_user.username == "ivan"

    fake.push_update(fake.text_update(USER, "второе"))
    fake.push_update(fake.text_update(USER, "третье"))
    again = await bot.get_updates(offset=0)  # offset 0 confirms nothing
    assert [u.update_id for u in again] == [1, 2, 3]
    rest = await bot.get_updates(offset=3, limit=5)  # confirms 1 and 2 for good
    assert [u.update_id for u in rest] == [3]
    assert [u.update_id for u in await bot.get_updates(offset=0)] == [3]
    assert await bot.get_updates(offset=4, timeout=0) == []


async def test_second_long_poll_terminates_the_first(fake: FakeTelegram, bot: Bot) -> None:
    first = asyncio.create_task(bot.get_updates(timeout=10))
    await fake.wait_until(lambda: fake.is_long_polling)
    second = asyncio.create_task(bot.get_updates(timeout=10))
    with pytest.raises(TelegramConflictError, match="terminated by other getUpdates request"):
        await first
    await fake.wait_until(lambda: fake.is_long_polling)
    fake.push_update(fake.text_update(USER, "hi"))
    assert len(await second) == 1


async def test_injected_429_raises_retry_after(fake: FakeTelegram, bot: Bot) -> None:
    fake.fail_next("sendMessage", retry_after=7, chat_id=USER)
    assert (await bot.send_message(USER + 1, "other chat passes")).message_id == 1
    with pytest.raises(TelegramRetryAfter) as caught:
        await bot.send_message(USER, "x")
    assert caught.value.retry_after == 7
    assert fake.calls_of("sendMessage")[1].response == {
        "ok": False,
        "error_code": 429,
        "description": "Too Many Requests: retry after 7",
        "parameters": {"retry_after": 7},
    }
    assert (await bot.send_message(USER, "x")).message_id == 1  # times=1: next one passes


async def test_blocked_and_deactivated_users_are_forbidden(fake: FakeTelegram, bot: Bot) -> None:
    fake.block_user(USER)
    fake.deactivate_user(USER + 1)
    with pytest.raises(TelegramForbiddenError, match="bot was blocked by the user"):
        await bot.send_message(USER, "x")
    with pytest.raises(TelegramForbiddenError, match="bot was blocked by the user"):
        await bot.send_photo(USER, "AgACAgIAAxkBAAI")  # blocked before the file is looked at
    with pytest.raises(TelegramForbiddenError, match="user is deactivated"):
        await bot.send_message(USER + 1, "x")
    assert fake.messages_to(USER) == []


async def test_forum_topics_and_thread_errors(fake: FakeTelegram, bot: Bot) -> None:
    fake.add_group(OPERATORS, "Operators", is_forum=True)
    topic = await bot.create_forum_topic(OPERATORS, "Иван · #4242", icon_color=16766590)
    thread = topic.message_thread_id
    assert thread > 1 and topic.icon_color == 16766590
    sent = await bot.send_message(OPERATORS, "Новый вопрос", message_thread_id=thread)
    assert sent.is_topic_message and sent.message_thread_id == thread
    assert [m["text"] for m in fake.messages_to(OPERATORS, thread)] == ["Новый вопрос"]
    assert await bot.edit_forum_topic(OPERATORS, thread, name="Иван · закрыт") is True
    assert fake.topics_of(OPERATORS)[thread]["name"] == "Иван · закрыт"

    with pytest.raises(TelegramBadRequest, match="message thread not found"):
        await bot.send_message(OPERATORS, "General", message_thread_id=1)
    assert await bot.delete_forum_topic(OPERATORS, thread) is True
    with pytest.raises(TelegramBadRequest, match="message thread not found"):
        await bot.send_message(OPERATORS, "late", message_thread_id=thread)
    assert fake.messages_to(OPERATORS, thread) == []
    with pytest.raises(TelegramBadRequest, match="chat not found"):
        await bot.send_message(-100999, "no such group")


async def test_copy_message_relays_customer_media_into_topic(fake: FakeTelegram, bot: Bot) -> None:
    fake.add_group(OPERATORS, "Operators")
    thread = (await bot.create_forum_topic(OPERATORS, "Иван")).message_thread_id
    incoming = fake.push_update(fake.media_update(USER, "voice"))["message"]
    copied = await bot.copy_message(
        OPERATORS, USER, incoming["message_id"], message_thread_id=thread
    )
    [relayed] = fake.messages_to(OPERATORS, thread)
    assert relayed["message_id"] == copied.message_id
    assert relayed["voice"]["file_id"] == incoming["voice"]["file_id"]
    assert "forward_origin" not in relayed
    with pytest.raises(TelegramBadRequest, match="message to copy not found"):
        await bot.copy_message(OPERATORS, USER, 999, message_thread_id=thread)

    operator = fake.group_message_update(OPERATORS, 77, "Здравствуйте!", thread_id=thread)
    assert operator["message"]["is_topic_message"] is True
    assert operator["message"]["reply_to_message"]["forum_topic_created"]["name"] == "Иван"


async def test_migrated_group_raises_migrate_to_chat(fake: FakeTelegram, bot: Bot) -> None:
    fake.add_group(-555, "Old group", is_forum=False)
    fake.migrate_group(-555, OPERATORS)
    with pytest.raises(TelegramMigrateToChat) as caught:
        await bot.send_message(-555, "x")
    assert caught.value.migrate_to_chat_id == OPERATORS
    assert "group chat was upgraded to a supergroup chat" in caught.value.message
    assert (await bot.send_message(OPERATORS, "x")).chat.type == "supergroup"


async def test_group_limit_is_20_per_minute() -> None:
    clock = FakeClock()
    async with FakeTelegram(enforce_limits=True, clock=clock) as fake:
        fake.add_group(OPERATORS, "Operators", is_forum=False)
        bot = make_bot(fake)
        try:
            for _ in range(20):
                await bot.send_message(OPERATORS, "paced")
                clock.now += 1.5  # well inside the per-chat 1 msg/s
            assert fake.limit_violations == []
            with pytest.raises(TelegramRetryAfter) as caught:
                await bot.send_message(OPERATORS, "21st within a minute")
            assert caught.value.retry_after == 30  # the first send leaves the window at +60 s
            [violation] = fake.limit_violations
            assert (violation.scope, violation.chat_id) == ("group", OPERATORS)
            clock.now = 1060.0
            assert (await bot.send_message(OPERATORS, "budget is back")).message_id == 22
        finally:
            await bot.session.close()


async def test_private_chat_allows_a_burst_then_one_per_second() -> None:
    clock = FakeClock()
    async with FakeTelegram(enforce_limits=True, clock=clock) as fake:
        bot = make_bot(fake)
        try:
            for text in ("1", "2", "3"):
                await bot.send_message(USER, text)
            await bot.send_chat_action(USER, "typing")  # not a message: never limited
            with pytest.raises(TelegramRetryAfter) as caught:
                await bot.send_message(USER, "4")
            assert caught.value.retry_after == 1
            assert [v.scope for v in fake.limit_violations] == ["chat"]
            clock.now += 1.0
            await bot.send_message(USER, "4")
            assert len(fake.messages_to(USER)) == 4
        finally:
            await bot.session.close()


async def test_answer_callback_query_only_once(fake: FakeTelegram, bot: Bot) -> None:
    keyboard = InlineKeyboardMarkup(
        inline_keyboard=[[InlineKeyboardButton(text="Оценить", callback_data="rate:5")]]
    )
    sent = await bot.send_message(USER, "Оцените ответ", reply_markup=keyboard)
    update = fake.push_update(fake.callback_update(USER, "rate:5"))
    query = update["callback_query"]
    assert query["message"]["message_id"] == sent.message_id
    assert await bot.answer_callback_query(query["id"], text="Спасибо!") is True
    with pytest.raises(TelegramBadRequest, match="query is too old"):
        await bot.answer_callback_query(query["id"])
    with pytest.raises(TelegramBadRequest, match="query ID is invalid"):
        await bot.answer_callback_query("123")


async def test_operator_button_in_a_topic_and_keyboard_edit(fake: FakeTelegram, bot: Bot) -> None:
    fake.add_group(OPERATORS, "Operators")
    thread = (await bot.create_forum_topic(OPERATORS, "Иван")).message_thread_id
    take = InlineKeyboardMarkup(
        inline_keyboard=[[InlineKeyboardButton(text="Взять", callback_data="take:4242")]]
    )
    card = await bot.send_message(OPERATORS, "Клиент ждёт", message_thread_id=thread,
                                  reply_markup=take)  # fmt: skip
    press = fake.push_update(fake.callback_update(77, "take:4242", chat_id=OPERATORS))
    query = press["callback_query"]
    assert query["message"]["message_id"] == card.message_id
    assert query["message"]["chat"]["id"] == OPERATORS and query["from"]["id"] == 77
    assert await bot.answer_callback_query(query["id"], text="Диалог ваш") is True
    await bot.edit_message_reply_markup(chat_id=OPERATORS, message_id=card.message_id)
    [stored] = fake.messages_to(OPERATORS, thread)
    assert "reply_markup" not in stored and stored["edit_date"]
    with pytest.raises(TelegramBadRequest, match="BUTTON_DATA_INVALID"):
        too_long = InlineKeyboardButton(text="x", callback_data="x" * 65)
        await bot.send_message(USER, "x", reply_markup=InlineKeyboardMarkup(
            inline_keyboard=[[too_long]]))  # fmt: skip


async def test_send_photo_upload_and_media_group(fake: FakeTelegram, bot: Bot) -> None:
    photo = BufferedInputFile(b"\xff\xd8\xff\xe0jpeg-bytes", filename="receipt.jpg")
    sent = await bot.send_photo(USER, photo, caption="Чек")
    assert sent.photo and sent.caption == "Чек"
    [call] = fake.calls_of("sendPhoto")
    [part] = call.files.values()
    assert part.filename == "receipt.jpg" and part.data == b"\xff\xd8\xff\xe0jpeg-bytes"
    assert call.params["photo"] == f"attach://{part.field}"
    file = await bot.get_file(sent.photo[-1].file_id)
    assert file.file_path and file.file_size == len(part.data)

    again = await bot.send_photo(USER, sent.photo[-1].file_id)  # re-send by file_id
    assert again.photo and again.photo[-1].file_id == sent.photo[-1].file_id
    with pytest.raises(TelegramBadRequest, match="wrong file identifier"):
        await bot.send_photo(USER, "AgACAgIAAxkBAAIBunknown")
    album = await bot.send_media_group(
        USER,
        [
            InputMediaPhoto(media=BufferedInputFile(b"1", "1.jpg")),
            InputMediaPhoto(media=sent.photo[-1].file_id, caption="2"),
        ],
    )
    assert len({m.media_group_id for m in album}) == 1
    assert [m["message_id"] for m in fake.messages_to(USER)] == [1, 2, 3, 4]


async def test_webhook_delivery_with_secret_header(fake: FakeTelegram, bot: Bot) -> None:
    seen: list[tuple[str | None, dict[str, Any]]] = []

    async def receive(request: web.Request) -> web.Response:
        seen.append((request.headers.get("X-Telegram-Bot-Api-Secret-Token"), await request.json()))
        return web.json_response({})

    app = web.Application()
    app.router.add_post("/tg", receive)
    runner, base = await serve(app)
    try:
        assert await bot.set_webhook(f"{base}/tg", secret_token="s3cr3t") is True
        with pytest.raises(TelegramConflictError, match="while webhook is active"):
            await bot.get_updates()
        update = fake.text_update(USER, "через вебхук")
        assert await fake.deliver_webhook(update) == 200
        [(secret, body)] = seen
        assert secret == "s3cr3t" and body["message"]["text"] == "через вебхук"
        assert body["update_id"] in fake.pushed_at
        assert await fake.deliver_webhook(update, url=f"{base}/missing") == 404
        info = await bot.get_webhook_info()
        assert info.url == f"{base}/tg"
        assert info.last_error_message == "Wrong response from the webhook: 404 Not Found"
    finally:
        await runner.cleanup()


async def test_webhook_reply_from_aiogram_is_executed(fake: FakeTelegram, bot: Bot) -> None:
    dispatcher = Dispatcher()

    @dispatcher.message()
    async def echo(message: Message) -> SendMessage:
        return message.answer(f"эхо: {message.text}")  # answered inside the webhook response

    app = web.Application()
    handler = SimpleRequestHandler(
        dispatcher, bot, handle_in_background=False, secret_token="s3cr3t"
    )
    handler.register(app, path="/webhook")
    runner, base = await serve(app)
    try:
        await bot.set_webhook(f"{base}/webhook", secret_token="s3cr3t")
        assert await fake.deliver_webhook(fake.text_update(USER, "привет")) == 200
        [reply] = await fake.wait_for("sendMessage")
        assert reply.via == "webhook-reply" and reply.ok
        assert [m["text"] for m in fake.messages_to(USER)] == ["эхо: привет"]
        assert await fake.deliver_webhook(fake.text_update(USER, "x"), secret="wrong") == 401
    finally:
        await runner.cleanup()


async def test_wait_for_is_event_driven_and_times_out(fake: FakeTelegram, bot: Bot) -> None:
    fake.delay("sendMessage", 0.05)
    task = asyncio.create_task(bot.send_message(USER, "slow"))
    calls = await fake.wait_for("sendMessage", predicate=lambda c: c.params["text"] == "slow")
    assert calls[0].ok and calls[0].result["text"] == "slow"
    await task
    with pytest.raises(WaitTimeout):
        await fake.wait_for("sendMessage", count=2, timeout=0.05)
