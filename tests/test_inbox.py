"""The trainers' inbox: capture with the turn's commit, grouping, labelling into the YAML files
(comments and layout kept), the CLI."""

from __future__ import annotations

import asyncio
import csv
import difflib
import shutil
import time
from pathlib import Path

import pytest
import redis.asyncio as aioredis
from typer.testing import CliRunner

from bots.cli.common import console
from bots.cli.main import app
from bots.settings import DEFAULT_NLU_DIR, Settings
from bots.trainer.inbox import grouped, label
from bots.turns import Brain
from handoff.conversations import ConversationStore, Limits
from handoff.inbox import Inbox, InboxEntry
from handoff.keys import Keys
from handoff.scripts import Scripts
from nlu.data import DataError, load_training_data
from tests.telegram_harness import running_bot
from tests.test_handoff_support import make_keys

CUSTOMER = 7301


@pytest.fixture
def data_dir(tmp_path: Path) -> Path:
    """A private copy of the demo NLU data: labelling writes into it."""
    return Path(shutil.copytree(DEFAULT_NLU_DIR, tmp_path / "nlu"))


async def file_miss(store: ConversationStore, conv: str, text: str, guess: str = "cancel"
                    ) -> None:
    """What a bot turn that did not understand `text` commits."""
    entry = {"at": time.time(), "dir": "in", "text": text, "intent": "out_of_scope",
             "confidence": 0.9, "miss": "out_of_scope", "guesses": [[guess, 0.1]]}
    result = await store.commit(await store.load(conv), shard_stream="unused", group="workers",
                                entry="", transcript=[entry], dialogue={})
    assert result.status == "ok"


def store_for(client: aioredis.Redis, keys: Keys) -> ConversationStore:
    return ConversationStore(client, keys, Scripts(client), Limits())


async def test_not_understood_messages_are_filed_with_the_turn(
        settings: Settings, brain: Brain) -> None:
    async with running_bot(settings, brain) as bot:
        await bot.exchange(CUSTOMER, "привет")  # understood: not filed
        await bot.exchange(CUSTOMER, "абырвалг кракозябра")  # miss 1: the fallback
        await bot.exchange(CUSTOMER, "фыва пролд жэ")  # miss 2: handed to a human
        inbox = Inbox(bot.runtime.redis, bot.runtime.keys)
        entries = await inbox.entries()
        conv = await bot.conversation(CUSTOMER)
    assert [(e.text, e.miss, e.conv) for e in entries] == [
        ("абырвалг кракозябра", "out_of_scope", f"tg:{CUSTOMER}"),
        ("фыва пролд жэ", "handoff", f"tg:{CUSTOMER}"),
    ]
    assert conv.state == "queued"
    assert entries[0].guesses[0][0] == "damaged_item" and len(entries[0].guesses) == 3
    assert all(0 < score < 1 for _name, score in entries[0].guesses)
    assert entries[0].at <= entries[1].at


async def test_inbox_reads_are_bounded_and_skip_broken_entries(redis: aioredis.Redis) -> None:
    keys = make_keys()
    store = store_for(redis, keys)
    for text in ("раз", "два", "три"):
        await file_miss(store, "tg:1", text)
    await redis.xadd(keys.inbox(), {"conv": "tg:1", "e": "not json"})
    inbox = Inbox(redis, keys)
    try:
        assert [e.text for e in await inbox.entries(limit=2)] == ["три"]  # the newest two
        assert [e.text for e in await inbox.entries()] == ["раз", "два", "три"]
        everything = await inbox.entries()
        assert await inbox.resolve([everything[0].id], "dismissed") == 1
        assert await inbox.resolve([everything[0].id], "dismissed") == 0  # already done
        assert [e.text for e in await inbox.entries()] == ["два", "три"]
        done = await inbox.entries(include_done=True)
        assert done[0].done == "dismissed"
    finally:
        await redis.delete(keys.inbox(), keys.inbox_done(), keys.conversation("tg:1"),
                           keys.transcript("tg:1"))


def test_similar_messages_group_together() -> None:
    texts = ["где мой заказ 123", "где заказ???", "gde moi zakaz", "хочу вернуть деньги",
             "верните деньги", "почему небо голубое"]
    entries = [InboxEntry(str(i), f"tg:{i}", text, 0.0, "out_of_scope")
               for i, text in enumerate(texts)]
    groups = grouped(entries)
    assert [[e.text for e in g.entries] for g in groups] == [
        texts[:3], texts[3:5], texts[5:]]
    assert [g.number for g in groups] == [1, 2, 3] and groups[0].conversations == 3


async def test_labelling_appends_to_the_intents_file_keeping_comments(
        redis: aioredis.Redis, data_dir: Path) -> None:
    keys = make_keys()
    store = store_for(redis, keys)
    inbox = Inbox(redis, keys)
    orders = data_dir / "orders.yml"
    before = orders.read_text(encoding="utf-8")
    try:
        for text in ("а где мой   заказ,\nскажите", "заказ потерялся что ли", "где мой заказ",
                     "[тест](city) разметка"):
            await file_miss(store, "tg:5", text)
        entries = await inbox.entries()
        done = await label(inbox, data_dir, entries, "order_status")
        after = orders.read_text(encoding="utf-8")
        diff = [line for line in difflib.unified_diff(
            before.splitlines(), after.splitlines(), lineterm="", n=0)
            if not line.startswith(("---", "+++", "@@"))]
        assert diff == ["+      - а где мой заказ, скажите", "+      - заказ потерялся что ли"]
        assert "# Ромашка Маркет — orders" in after  # the comments are kept
        # an example already taught to the same intent is done; markup is refused and stays
        assert done.marked == [e.id for e in entries[:3]]
        assert [e.text for e in await inbox.entries()] == ["[тест](city) разметка"]
        assert [why for _text, why in done.appended.skipped] == [
            "already an example of order_status", "looks like entity markup ([text](entity))"]
        data = load_training_data(data_dir)
        assert "заказ потерялся что ли" in [e.text for e in data.intents["order_status"]]
        # a second pass teaches nothing twice
        again = await label(inbox, data_dir, entries[:2], "order_status")
        assert again.appended.added == [] and orders.read_text(encoding="utf-8") == after
        with pytest.raises(DataError, match="unknown intent"):
            await label(inbox, data_dir, entries[3:], "no_such_intent")
    finally:
        await redis.delete(keys.inbox(), keys.inbox_done(), keys.conversation("tg:5"),
                           keys.transcript("tg:5"))


async def test_a_new_intent_starts_its_own_file(redis: aioredis.Redis, data_dir: Path) -> None:
    keys = make_keys()
    await file_miss(store_for(redis, keys), "tg:6", "есть ли подарочные карты")
    inbox = Inbox(redis, keys)
    try:
        done = await label(inbox, data_dir, await inbox.entries(), "gift_cards",
                           new_intent=True)
        assert done.appended.file == data_dir / "learned.yml"
        data = load_training_data(data_dir)
        assert [e.text for e in data.intents["gift_cards"]] == ["есть ли подарочные карты"]
    finally:
        await redis.delete(keys.inbox(), keys.inbox_done(), keys.conversation("tg:6"),
                           keys.transcript("tg:6"))


def test_cli_lists_exports_and_assigns(
        monkeypatch: pytest.MonkeyPatch, tmp_path: Path, redis_url: str, data_dir: Path) -> None:
    keys = make_keys()
    monkeypatch.chdir(tmp_path)
    for name, value in {"REDIS_URL": redis_url, "REDIS_PREFIX": keys.prefix,
                        "NLU_DATA_DIR": str(data_dir), "CACHE_DIR": str(tmp_path / "c"),
                        "DATA_DIR": str(tmp_path / "d")}.items():
        monkeypatch.setenv(name, value)
    monkeypatch.setattr(console, "width", 200)  # no table cell wrapped

    async def seed() -> None:
        client = aioredis.Redis.from_url(redis_url, decode_responses=True)
        try:
            store = store_for(client, keys)
            for n, text in enumerate(["можно оплатить частями", "оплата частями есть?",
                                      "рассрочка на оплату частями", "какая погода"]):
                await file_miss(store, f"tg:{n % 2}", text, guess="payment_methods")
        finally:
            await client.aclose()

    async def cleanup() -> None:
        client = aioredis.Redis.from_url(redis_url, decode_responses=True)
        await client.delete(keys.inbox(), keys.inbox_done(), *(
            key for n in range(2) for key in (keys.conversation(f"tg:{n}"),
                                              keys.transcript(f"tg:{n}"))))
        await client.aclose()

    asyncio.run(seed())
    runner = CliRunner()
    try:
        listed = runner.invoke(app, ["inbox", "list"])
        assert listed.exit_code == 0, listed.output
        assert "4 open messages" in listed.output and "payment_methods ×3" in listed.output
        exported = runner.invoke(app, ["inbox", "export", str(tmp_path / "inbox.csv")])
        assert exported.exit_code == 0, exported.output
        with (tmp_path / "inbox.csv").open(encoding="utf-8") as file:
            rows = list(csv.DictReader(file))
        assert [(r["group"], r["text"]) for r in rows][:3] == [
            ("1", "можно оплатить частями"), ("1", "оплата частями есть?"),
            ("1", "рассрочка на оплату частями")]
        assigned = runner.invoke(app, ["inbox", "assign", "payment_methods", "--group", "1",
                                       "--yes"])
        assert assigned.exit_code == 0, assigned.output
        assert "3 examples added" in assigned.output
        examples = load_training_data(data_dir).intents["payment_methods"]
        assert "рассрочка на оплату частями" in [e.text for e in examples]
        left = runner.invoke(app, ["inbox", "list"])
        assert "1 open messages" in left.output and "какая погода" in left.output
        wrong = runner.invoke(app, ["inbox", "assign", "x", "--ids", "nonsense"])
        assert wrong.exit_code == 1 and "not inbox ids" in wrong.output
        dismissed = runner.invoke(app, ["inbox", "dismiss", "--ids", rows[3]["id"]])
        assert "1 entries dismissed" in dismissed.output
        assert "inbox is empty" in runner.invoke(app, ["inbox", "list"]).output
    finally:
        asyncio.run(cleanup())



def test_grouping_in_blocks_matches_the_leader_rule_with_bounded_memory() -> None:
    """Each message joins the first group whose leader it resembles: the same answer as the
    whole n×n similarity matrix gives, computed a block at a time (memory: block × leaders)."""
    import random

    import numpy as np

    from nlu import inbox
    from nlu.normalize import analyze

    rng = random.Random(7)
    themes = ["где мой заказ", "не пришел возврат денег", "промокод не работает",
              "как оплатить картой", "курьер опоздал", "сломался телефон"]
    texts = [f"{rng.choice(themes)} {rng.choice(['', 'срочно', 'уже неделю', '!!!'])} "
             f"{rng.randrange(1000)}" if rng.random() < 0.7 else
             " ".join(rng.choice(["кот", "дом", "погода", "фильм", "налог", "сочи", "торт"])
                      for _ in range(3)) for _ in range(700)]
    matrix = inbox._unit_rows([analyze(t) for t in texts])
    cosine = (matrix @ matrix.T).toarray()
    leaders: list[int] = []
    expected: list[list[int]] = []
    for index in range(len(texts)):  # the rule, straight from its definition
        joined = next((g for g, leader in enumerate(leaders)
                       if cosine[index, leader] >= inbox.SIMILARITY), None)
        if joined is None:
            leaders.append(index)
            expected.append([index])
        else:
            expected[joined].append(index)
    expected.sort(key=lambda group: (-len(group), group[0]))
    assert len(texts) > 2 * inbox.BLOCK  # several blocks, leaders made in earlier ones
    assert inbox.group_texts(texts) == expected
    assert np.isclose(cosine.diagonal(), 1.0).all()
