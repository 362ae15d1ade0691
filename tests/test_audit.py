"""The journal read back (API, CLI, CSV) and dead letters sent back to be processed, through the
running bot: a requeued event reaches the customer's conversation like a new message."""

from __future__ import annotations

import asyncio
import csv
import io
import time

import aiohttp
import pytest
from typer.testing import CliRunner

from bots.cli.common import console
from bots.cli.main import app
from bots.settings import Settings
from bots.turns import Brain
from handoff.audit import COLUMNS, JournalQuery, parse_moment
from handoff.events import InboundEvent, Profile
from tests.telegram_harness import running_bot, wait_until

TOKEN = "audit-token-0123456789"
ANNA, BORIS, VERA = 7501, 7502, 7503


def letter_of(conv: str, text: str) -> dict[str, str]:
    event = InboundEvent(event_id=f"dead-{conv}", conversation=conv, kind="message",
                         profile=Profile(user_id=conv.split(":")[1], first_name="Анна"),
                         text=text, received_at=time.time())
    return {"stream": "sb:{in:0}:events", "entry": "1-0", "error": "RuntimeError('boom')",
            "event": event.to_json()}


async def test_journal_and_dead_letters_through_the_api_and_the_cli(
    settings: Settings, brain: Brain, monkeypatch: pytest.MonkeyPatch
) -> None:
    async with running_bot(settings, brain, api_token=TOKEN) as bot:
        redis, keys = bot.runtime.redis, bot.runtime.keys
        await bot.exchange(ANNA, "позовите оператора")  # a handoff: journaled
        await bot.exchange(BORIS, "оператор")
        letter = await redis.xadd(keys.dead_letters(), letter_of(f"tg:{VERA}", "привет"))
        base = f"http://127.0.0.1:{bot.runtime.settings.http_port}/api/v1"
        async with aiohttp.ClientSession(headers={"Authorization": f"Bearer {TOKEN}"}) as http:
            async with http.get(f"{base}/journal", params={"conversation": f"tg:{ANNA}"}) as r:
                assert r.status == 200
                anna = (await r.json())["entries"]
            async with http.get(f"{base}/journal", params={"format": "csv", "limit": "1"}) as r:
                table = list(csv.reader(io.StringIO(await r.text())))
            async with http.get(f"{base}/journal", params={"since": "yesterday"}) as r:
                assert r.status == 400
            async with http.get(f"{base}/dead-letters") as r:
                (listed,) = (await r.json())["dead_letters"]
            async with http.post(f"{base}/dead-letters/{letter}/requeue",
                                 json={"by": "tg:9101"}) as r:
                assert r.status == 200
            async with http.post(f"{base}/dead-letters/{letter}/requeue") as r:
                assert r.status == 404  # once only
            async with http.post(f"{base}/dead-letters/nonsense/requeue") as r:
                assert r.status == 400
        # the requeued "привет" is processed like a new message: the bot answers it
        await wait_until(lambda: bot.texts_to(VERA), bool, 5,
                         "the answer to the requeued message")
        assert await redis.xlen(keys.dead_letters()) == 0

        for name, value in {"REDIS_URL": settings.redis_url or "",
                            "REDIS_PREFIX": settings.redis_prefix}.items():
            monkeypatch.setenv(name, value)
        monkeypatch.setattr(console, "width", 200)
        runner = CliRunner()
        printed = await asyncio.to_thread(
            runner.invoke, app, ["journal", "--action", "requeue_dead_letter"])
        exported = await asyncio.to_thread(
            runner.invoke, app, ["journal", "--conversation", f"tg:{BORIS}", "--csv", "-"])
        await redis.xadd(keys.dead_letters(), letter_of(f"tg:{BORIS}", "привет"))
        letters = await asyncio.to_thread(runner.invoke, app, ["deadletters", "list"])
        missing = await asyncio.to_thread(runner.invoke, app,
                                          ["deadletters", "requeue", "1-1"])

    assert "handoff" in {e["action"] for e in anna}
    assert all(e["conversation"] == f"tg:{ANNA}" for e in anna)
    assert table[0] == list(COLUMNS) and len(table) == 2
    assert listed["id"] == letter and listed["conversation"] == f"tg:{VERA}"
    assert printed.exit_code == 0 and "tg:9101" in printed.output, printed.output
    rows = list(csv.reader(io.StringIO(exported.output)))
    assert rows[0] == list(COLUMNS) and {r[2] for r in rows[1:]} == {f"tg:{BORIS}"}
    assert letters.exit_code == 0 and f"tg:{BORIS}" in letters.output
    assert missing.exit_code == 1 and "no such dead letter" in missing.output


def test_journal_queries_and_moments() -> None:
    assert parse_moment("1765000000", "UTC") == 1765000000.0
    assert parse_moment("2026-12-06", "Europe/Moscow") == parse_moment(
        "2026-12-05T21:00:00+00:00", "UTC")
    with pytest.raises(ValueError):
        parse_moment("yesterday", "UTC")
    with pytest.raises(ValueError):
        JournalQuery(limit=0)
    with pytest.raises(ValueError):
        JournalQuery(since=10, until=5)
