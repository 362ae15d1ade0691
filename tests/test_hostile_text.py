"""Hostile customer text: letter runs, huge messages, binary-ish junk. Every one is answered,
nothing recurses per letter, and a transcript entry stays small."""

from __future__ import annotations

import itertools
import time

import pytest

from bots.settings import Settings
from bots.textcap import MAX_STORED, capped
from bots.turns import Brain
from fakes.telegram import FakeTelegram
from nlu.normalize import MAX_ANALYZED, analyze, normalize
from nlu.translit import MAX_WORD, _readings, layout_candidates, translit_candidates
from nlu.types import NLUBackend, ParseResult
from tests.conftest import FAKE_TOKEN
from tests.telegram_harness import running_bot, wait_until
from tests.test_desk_e2e import DESK

# A bound only something quadratic or exponential can break (a parse takes ~1 ms here).
SLOW = 1.0

HOSTILE = [
    "a" * 5000,
    "ж" * 5000,
    "zh" * 2500,
    "ii" * 2500 + "Z",  # Fibonacci-many splits, then a letter no spelling reads
    "ghbdtn" * 800,
    "\x00\uffff" * 2000,
    "😡" * 3000,
    "е\u0301" * 3000,  # combining acute accents
    "zakaz" + "\u200b" * 3000 + "gde",
    "".join(chr(c) for c in range(0, 0x3000, 3)),
    "a\x00b\ud7ffc\U0010ffff" * 700,
]


@pytest.mark.parametrize("text", HOSTILE, ids=range(len(HOSTILE)))
def test_translit_and_normalisation_return_on_hostile_text(text: str) -> None:
    started = time.perf_counter()
    for chunk in (text, text.lower(), text[:MAX_WORD], text[: MAX_WORD + 1]):
        candidates = list(translit_candidates(chunk))
        assert len(candidates) < 200
        list(layout_candidates(chunk))
        analyze(chunk)
        normalize(chunk, latin_to_cyrillic=False)
    assert time.perf_counter() - started < SLOW


def test_readings_are_iterative_and_lazy() -> None:
    # One Python frame per letter used to raise RecursionError from ~1,000 letters on.
    assert next(_readings("a" * 5000)) == "а" * 5000
    assert list(itertools.islice(_readings("ts" * 3000), 2)) == ["ц" * 3000, "ц" * 2999 + "тс"]
    started = time.perf_counter()
    assert list(_readings("i" * 3000 + "Z")) == []  # unreadable: found without a search
    assert time.perf_counter() - started < SLOW


def test_normal_words_read_as_before_and_letter_runs_not_at_all() -> None:
    assert next(translit_candidates("zakaz")) == "заказ"
    assert "сколько" in translit_candidates("skolko")
    assert list(translit_candidates("a" * (MAX_WORD + 1))) == []
    assert list(layout_candidates("ghbdtn" * 10)) == []
    assert analyze("zakaz" * 300).tokens == ("zakaz" * 200,)  # cut at MAX_ANALYZED, kept as is
    assert normalize("gde moi zakaz " + "a" * 4000) == "где мои заказ " + "a" * (MAX_ANALYZED - 14)


@pytest.mark.parametrize("text", [
    "ы" * 4096,
    "q" * 4096,
    "где мой заказ " * 75_000,  # 1,050,000 characters
    "x" * 1_000_000,
], ids=["cyrillic run", "latin run", "1M words", "1M letters"])
async def test_a_parse_of_a_huge_text_is_fast(brain: Brain, text: str) -> None:
    started = time.perf_counter()
    result = await brain.nlu.parse(text)
    assert time.perf_counter() - started < SLOW
    assert result.text == text  # the parse reads the start, the result keeps the whole text


async def test_only_the_start_of_a_long_text_is_parsed(brain: Brain) -> None:
    text = "где мой заказ 1234567 " + "ну " * 400_000
    head = await brain.nlu.parse(text[:MAX_ANALYZED])
    whole = await brain.nlu.parse(text)
    assert (whole.intent, whole.ranking, whole.entities) == (head.intent, head.ranking,
                                                             head.entities)


def test_capped_keeps_short_texts_and_marks_long_ones() -> None:
    assert capped("привет") == "привет"
    assert capped("ы" * MAX_STORED) == "ы" * MAX_STORED
    long = capped("ы" * 100_000)
    assert long == "ы" * MAX_STORED + "…[truncated, 100000 characters]"


async def test_a_four_thousand_letter_word_is_answered(settings: Settings, brain: Brain
                                                        ) -> None:
    user = 7101
    async with running_bot(settings, brain) as bot:
        started = time.monotonic()
        await bot.say(user, "a" * 4000)
        await bot.wait_texts(user, 1, timeout=5.0)
        assert time.monotonic() - started < 5.0
        assert await bot.runtime.redis.xlen(bot.runtime.keys.dead_letters()) == 0
        (entry,) = [e for e in await bot.runtime.store.transcript(f"tg:{user}")
                    if e["dir"] == "in"]
        assert entry["text"] == "a" * 4000


async def test_a_hundred_thousand_characters_are_answered_and_stored_capped(
    settings: Settings, brain: Brain
) -> None:
    user = 7102
    text = ("где мой заказ, я жду уже неделю! " * 3200)[:100_000]
    async with running_bot(settings, brain) as bot:
        await bot.say(user, text)
        await bot.wait_texts(user, 1, timeout=5.0)
        transcript = await wait_until(
            lambda: bot.runtime.store.transcript(f"tg:{user}"),
            lambda got: any(e["dir"] == "in" for e in got), 5.0, "the transcript")
        (entry,) = [e for e in transcript if e["dir"] == "in"]
        assert entry["text"] == capped(text)
        assert entry["text"].endswith("…[truncated, 100000 characters]")
        assert len(entry["text"]) < MAX_STORED + 40
        assert await bot.runtime.redis.xlen(bot.runtime.keys.dead_letters()) == 0


class _Breaks:
    """An NLU that fails on one text, the way a bug would."""

    name = "breaks"

    def __init__(self, inner: NLUBackend) -> None:
        self.inner = inner

    async def parse(self, text: str) -> ParseResult:
        if "ломается" in text:
            raise RuntimeError("a bug in the NLU")
        return await self.inner.parse(text)

    def known_intents(self) -> frozenset[str]:
        return self.inner.known_intents()


async def test_a_message_that_keeps_failing_is_answered_not_silently_dead_lettered(
    settings: Settings, brain: Brain
) -> None:
    breaking = Brain(nlu=_Breaks(brain.nlu), engine=brain.engine, language=brain.language)
    async with running_bot(settings, breaking) as bot:
        await bot.say(7702, "это сообщение ломается")
        (sorry,) = await bot.wait_texts(7702, 1, timeout=15)
        assert "не получилось обработать" in sorry
        assert await bot.runtime.redis.xlen(bot.runtime.keys.dead_letters()) == 1
        await bot.say(7702, "спасибо")  # the shard goes on
        await bot.wait_texts(7702, 2, timeout=10)


async def test_a_message_that_keeps_failing_is_noted_for_the_desk(
    settings: Settings, brain: Brain
) -> None:
    breaking = Brain(nlu=_Breaks(brain.nlu), engine=brain.engine, language=brain.language)
    async with FakeTelegram(token=FAKE_TOKEN) as fake:
        fake.add_group(DESK, "Поддержка", is_forum=True)
        async with running_bot(settings, breaking, fake=fake, operator_chat_id=DESK) as bot:
            await bot.say(7703, "это сообщение ломается")
            (sorry,) = await bot.wait_texts(7703, 1, timeout=15)
            assert "не получилось обработать" in sorry
            notes = await wait_until(
                lambda: [m for m in fake.messages_to(DESK) if "не обработано" in m.get("text", "")],
                bool, 10, "the note in the desk")
            assert "tg:7703" in notes[0]["text"] and "ломается" in notes[0]["text"]
            assert not fake.topics_of(DESK)  # in General: no topic opened for it
