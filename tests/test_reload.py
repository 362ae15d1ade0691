"""Hot reload: a good change is swapped in, a broken file keeps the running brain and says
where it is broken, a request reaches every process, and messages keep flowing meanwhile."""

from __future__ import annotations

import asyncio
import contextlib
import shutil
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from bots.runtime import Runtime, Tuning
from bots.settings import DEFAULT_FLOWS_DIR, DEFAULT_NLU_DIR, Settings
from bots.trainer.reload import BrainReloader, check_files
from bots.turns import Brain
from fakes.telegram import FakeTelegram
from tests.conftest import FAKE_TOKEN
from tests.telegram_harness import running_bot, wait_until

DESK = -1001000000088
CUSTOMER = 6088
TRAINER = 9188
GOODBYES = ("Всего доброго! Если появятся вопросы — пишите, мы на связи.",
            "До свидания! Хорошего дня. Если что-то понадобится — пишите, мы на связи.",
            "Всего хорошего! Будем рады помочь снова — пишите, мы на связи.")
NEW_GOODBYE = "До новых встреч — это новая версия сценария!"


@pytest.fixture
def files(tmp_path: Path) -> tuple[Path, Path]:
    """Private copies of the demo flows and NLU data (the same content: the cached model)."""
    return (Path(shutil.copytree(DEFAULT_FLOWS_DIR, tmp_path / "flows")),
            Path(shutil.copytree(DEFAULT_NLU_DIR, tmp_path / "nlu")))


def new_goodbye(flows: Path) -> None:
    core = flows / "core.yml"
    text = core.read_text(encoding="utf-8")
    for old in GOODBYES:
        text = text.replace(f'"{old}"', f'"{NEW_GOODBYE}"')
    core.write_text(text, encoding="utf-8")


def break_a_reference(flows: Path) -> int:
    """A button to a flow that does not exist; returns its line."""
    shop = flows / "shop.yml"
    lines = shop.read_text(encoding="utf-8").splitlines(keepends=True)
    button = "{title: Контакты, intent: contacts}"
    number = next(i for i, line in enumerate(lines) if button in line)
    lines[number] = lines[number].replace("intent: contacts", "flow: no_such_flow")
    shop.write_text("".join(lines), encoding="utf-8")
    return number + 1


async def test_reload_good_then_broken_from_the_desk(
        settings: Settings, brain: Brain, files: tuple[Path, Path]) -> None:
    flows, nlu = files
    async with FakeTelegram(token=FAKE_TOKEN) as fake:
        fake.add_group(DESK, "Поддержка", is_forum=True)
        async with running_bot(settings, brain, fake=fake, operator_chat_id=DESK,
                               flows_dir=flows, nlu_data_dir=nlu, desk_trainers=str(TRAINER),
                               tuning=Tuning(reload_poll=0.2)) as bot:
            assert (await bot.exchange(CUSTOMER, "до свидания"))[0] in GOODBYES

            def general() -> list[str]:
                return [m.get("text", "") for m in fake.messages_to(DESK)]

            # a good change: swapped in, reported once in the General topic
            new_goodbye(flows)
            fake.push_update(fake.group_message_update(DESK, TRAINER, "/reload"))
            done = await wait_until(general, lambda got: any("перезагружены" in t for t in got),
                                    10, "the reload report")
            assert any("Перезагружаю" in t for t in done)
            assert await bot.exchange(CUSTOMER, "до свидания") == [NEW_GOODBYE]

            # a broken file: refused with file and line, the running version kept
            line = break_a_reference(flows)
            fake.push_update(fake.group_message_update(DESK, TRAINER, "/reload"))
            failed = await wait_until(
                general, lambda got: any("Не перезагружено" in t for t in got), 10,
                "the refusal")
            report = next(t for t in failed if "Не перезагружено" in t)
            assert f"{flows / 'shop.yml'}:{line}:" in report and "no_such_flow" in report
            assert await bot.exchange(CUSTOMER, "до свидания") == [NEW_GOODBYE]
            assert sum("перезагружены" in t for t in general()) == 1

            # an operator who is not a trainer cannot reload
            fake.push_update(fake.group_message_update(DESK, 9999, "/reload"))
            await wait_until(general, lambda got: any("только для тренеров" in t for t in got),
                             5, "the refusal of a non-trainer")


def test_a_broken_nlu_file_is_reported_with_its_line(
        settings: Settings, files: tuple[Path, Path]) -> None:
    flows, nlu = files
    (nlu / "orders.yml").write_text('version: "3.1"\nnlu:\n  - intent: x\n    examples: [\n',
                                    encoding="utf-8")
    problems = check_files(settings.model_copy(update={"flows_dir": flows, "nlu_data_dir": nlu}))
    assert problems and problems[0].file.endswith("orders.yml") and problems[0].line > 0


@contextlib.asynccontextmanager
async def process(settings: Settings, brain: Brain) -> AsyncIterator[tuple[Runtime, BrainReloader]]:
    """One more bot process: its own runtime and reloader on the same Redis and files."""
    runtime = await Runtime.open(settings, brain=brain)
    reloader = runtime.reloader(await runtime.worker())
    stop = asyncio.Event()
    task = asyncio.create_task(reloader.run(stop))
    try:
        yield runtime, reloader
    finally:
        stop.set()
        await asyncio.wait_for(task, 10)
        await runtime.close()


async def test_a_reload_reaches_every_process_and_messages_keep_flowing(
        settings: Settings, brain: Brain, files: tuple[Path, Path]) -> None:
    flows, nlu = files
    configured = settings.model_copy(update={"flows_dir": flows, "nlu_data_dir": nlu})
    async with process(configured, brain) as (first, one), \
            process(configured, brain) as (second, two):
        await wait_until(lambda: first.redis.pubsub_numsub(first.keys.reload_channel()),
                         lambda got: got[0][1] == 2, 5, "both processes subscribed")
        new_goodbye(flows)
        # new NLU data too: the model is retrained, off the event loop
        with (nlu / "smalltalk.yml").open("a", encoding="utf-8") as file:
            file.write("  - intent: goodbye_forever\n    examples: |\n      - прощайте навсегда\n"
                       "      - больше не напишу\n      - прощай навеки\n")
        ticks = 0

        async def ticking() -> None:
            nonlocal ticks
            while True:
                await asyncio.sleep(0.01)
                ticks += 1

        ticker = asyncio.create_task(ticking())
        await second.request_reload("test")
        await wait_until(lambda: (one.reloads, two.reloads), lambda got: got == (1, 1), 60,
                         "both processes reloaded")
        ticker.cancel()
        assert ticks > 20  # the loop ran on while the model trained
        for runtime in (first, second):
            assert runtime.brain is not brain
            assert "goodbye_forever" in runtime.brain.nlu.known_intents()
        # nothing new: a check (the poll behind pub/sub) does nothing
        assert await one.check() is None
