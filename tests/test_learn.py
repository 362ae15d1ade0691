"""The trainers' desk commands end to end: /learn, /totemplate, /toflow, trainer-only refusals.

Real aiogram against the fake Bot API, real Redis, a private copy of the NLU data."""

from __future__ import annotations

import shutil
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import pytest
import yaml

from bots.settings import DEFAULT_NLU_DIR, Settings
from bots.turns import Brain
from fakes.telegram import FakeTelegram
from flows.loader import load_flows
from handoff.inbox import Inbox
from nlu.data import load_training_data
from tests.conftest import FAKE_TOKEN
from tests.telegram_harness import BotUnderTest, running_bot, wait_until
from tests.test_desk_e2e import buttons

DESK = -1001000000077
CUSTOMER = 6077
TRAINER = 9177
OPERATOR = 9178


@pytest.fixture
def data_dir(tmp_path: Path) -> Path:
    return Path(shutil.copytree(DEFAULT_NLU_DIR, tmp_path / "nlu"))


def in_topic(bot: BotUnderTest, thread: int) -> list[str]:
    return [m.get("text", "") for m in bot.fake.messages_to(DESK, thread)]


async def desk_says(bot: BotUnderTest, thread: int, user: int, text: str, *, expect: str,
                    reply_to: int | None = None) -> str:
    """Send `text` in the topic; return the bot's answer there containing `expect`."""
    before = len(in_topic(bot, thread))
    bot.fake.push_update(bot.fake.group_message_update(
        DESK, user, text, thread_id=thread, first_name="Тренер" if user == TRAINER else "Оля",
        reply_to_message_id=reply_to))
    found = await wait_until(lambda: [t for t in in_topic(bot, thread)[before:] if expect in t],
                             bool, 5, f"the desk's answer to {text!r}")
    return str(found[0])


@asynccontextmanager
async def desk_with_trainer(settings: Settings, brain: Brain, data_dir: Path, **extra: Any
                            ) -> AsyncIterator[BotUnderTest]:
    """The bot with a forum desk, TRAINER as its trainer and a private copy of the NLU data."""
    async with FakeTelegram(token=FAKE_TOKEN) as fake:
        fake.add_group(DESK, "Поддержка", is_forum=True)
        async with running_bot(settings, brain, fake=fake, operator_chat_id=DESK,
                               nlu_data_dir=data_dir, desk_trainers=str(TRAINER),
                               **extra) as bot:
            yield bot


async def handed_off(bot: BotUnderTest) -> tuple[int, dict[str, Any]]:
    await bot.exchange(CUSTOMER, "дарите ли вы подарки на день рождения?")  # not understood
    await bot.say(CUSTOMER, "можно купить сертификат в подарок")  # again: to a human
    await wait_until(lambda: bot.fake.topics_of(DESK), bool, 5, "the customer's topic")
    (thread,) = bot.fake.topics_of(DESK)
    cards = await wait_until(
        lambda: [m for m in bot.fake.messages_to(DESK, thread) if "Взять" in buttons(m)],
        bool, 5, "the card")
    return thread, cards[0]


async def test_learn_teaches_what_the_bot_did_not_understand(
        settings: Settings, brain: Brain, data_dir: Path) -> None:
    async with desk_with_trainer(settings, brain, data_dir) as bot:
        thread, _card = await handed_off(bot)
        inbox = Inbox(bot.runtime.redis, bot.runtime.keys)
        assert len(await inbox.open_of(f"tg:{CUSTOMER}")) == 2

        refused = await desk_says(bot, thread, OPERATOR, "/learn product_availability",
                                  expect="только для тренеров")  # operators do not teach
        assert "DESK_TRAINERS" in refused
        wrong = await desk_says(bot, thread, TRAINER, "/learn no_such_intent",
                                expect="Не добавил")
        assert "no_such_intent" in wrong
        answer = await desk_says(bot, thread, TRAINER, "/learn product_availability",
                                 expect="📚")
        assert "«дарите ли вы подарки на день рождения?»" in answer and "shop.yml" in answer
        assert "/reload" in answer
        texts = [e.text for e in load_training_data(data_dir).intents["product_availability"]]
        assert {"дарите ли вы подарки на день рождения?",
                "можно купить сертификат в подарок"} <= set(texts)
        assert "# Ромашка Маркет — about the shop" in (data_dir / "shop.yml").read_text(
            encoding="utf-8")
        assert await inbox.open_of(f"tg:{CUSTOMER}") == []
        again = await desk_says(bot, thread, TRAINER, "/learn product_availability",
                                expect="Непонятых ботом сообщений")
        assert "/learn интент текст" in again
        own = await desk_says(bot, thread, TRAINER,
                              "/learn product_availability а сертификаты есть?", expect="📚")
        assert "«а сертификаты есть?»" in own
        # nothing of this reached the customer
        assert not any("learn" in text or "📚" in text for text in bot.texts_to(CUSTOMER))


async def test_learn_as_a_reply_teaches_that_customer_message(
        settings: Settings, brain: Brain, data_dir: Path) -> None:
    async with desk_with_trainer(settings, brain, data_dir) as bot:
        thread, card = await handed_off(bot)
        question = "а электронные сертификаты бывают?"
        await bot.say(CUSTOMER, question)  # queued: copied into the topic
        copies = await wait_until(
            lambda: [m for m in bot.fake.messages_to(DESK, thread)
                     if m.get("text") == question], bool, 5, "the copy in the topic")
        operator_note = bot.fake.push_update(bot.fake.group_message_update(
            DESK, OPERATOR, "// наверное про сертификаты", thread_id=thread))

        for not_customer in (card["message_id"], operator_note["message"]["message_id"]):
            refused = await desk_says(bot, thread, TRAINER, "/learn product_availability",
                                      expect="Ответьте /learn", reply_to=not_customer)
            assert "на сообщение клиента" in refused
        answer = await desk_says(bot, thread, TRAINER, "/learn product_availability",
                                 expect="📚", reply_to=copies[0]["message_id"])
        assert f"«{question}»" in answer and "рождения" not in answer
        texts = [e.text for e in load_training_data(data_dir).intents["product_availability"]]
        assert question in texts and "дарите ли вы подарки на день рождения?" not in texts
        inbox = Inbox(bot.runtime.redis, bot.runtime.keys)
        assert len(await inbox.open_of(f"tg:{CUSTOMER}")) == 2  # the others still open

        twice = await desk_says(bot, thread, TRAINER, "/learn product_availability",
                                expect="Пропущено", reply_to=copies[0]["message_id"])
        assert "уже пример интента product_availability" in twice


async def test_an_operators_reply_becomes_a_template_and_a_flow_draft(
        settings: Settings, brain: Brain, data_dir: Path, tmp_path: Path) -> None:
    drafts = tmp_path / "drafts.yml"
    async with desk_with_trainer(settings, brain, data_dir, flow_drafts_file=drafts) as bot:
        thread, card = await handed_off(bot)
        bot.fake.push_update(bot.fake.callback_update(
            OPERATOR, buttons(card)["Взять"], message_id=card["message_id"], chat_id=DESK,
            first_name="Оля"))
        answer = ("Подарочные сертификаты на 1000, 3000 и 5000 ₽ продаются на сайте в "
                  "разделе «Подарки».")
        sent = bot.fake.push_update(bot.fake.group_message_update(
            DESK, OPERATOR, answer, thread_id=thread, first_name="Оля"))
        await wait_until(lambda: bot.texts_to(CUSTOMER), lambda got: answer in got, 5,
                         "the operator's answer at the customer")
        reply_id = sent["message"]["message_id"]

        refused = await desk_says(bot, thread, OPERATOR, "/totemplate gifts",
                                  expect="только для тренеров", reply_to=reply_id)
        assert "DESK_TRAINERS" in refused
        saved = await desk_says(bot, thread, TRAINER, "/totemplate gifts",
                                expect="Шаблон", reply_to=reply_id)
        assert "/t gifts" in saved
        templates = yaml.safe_load(settings.templates_path.read_text(encoding="utf-8"))
        assert templates["gifts"] == answer

        drafted = await desk_says(bot, thread, TRAINER, "/toflow gift_cards",
                                  expect="Черновик", reply_to=reply_id)
        assert "gift_cards_draft_1" in drafted
        flows = load_flows(drafts)  # the drafts file is a valid flows file
        draft = flows.flows["gift_cards_draft_1"]
        assert [i.name for i in draft.intents] == ["gift_cards"]
        assert f"tg:{CUSTOMER}" in (draft.description or "")
        assert "Review a draft" in drafts.read_text(encoding="utf-8")

        # without a reply: the conversation's last operator reply
        latest = await desk_says(bot, thread, TRAINER, "/totemplate gifts_short",
                                 expect="Шаблон")
        assert "/t gifts_short" in latest
        templates = yaml.safe_load(settings.templates_path.read_text(encoding="utf-8"))
        assert templates["gifts_short"] == answer

        # a reply to something that is not an operator's message is not guessed at
        lost = await desk_says(bot, thread, TRAINER, "/toflow gift_cards",
                               expect="Не нашёл", reply_to=card["message_id"])
        assert "ответьте командой" in lost
        assert sum(answer in text for text in bot.texts_to(CUSTOMER)) == 1
