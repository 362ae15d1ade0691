"""Trainer analytics on a scripted set of conversations: counters written by the turn commits,
the report through the CLI (tables, CSV) and the HTTP API."""

from __future__ import annotations

import asyncio
import csv
import io
from datetime import UTC, date, datetime

import aiohttp
import pytest
from typer.testing import CliRunner

from bots.cli.common import console
from bots.cli.main import app
from bots.settings import Settings
from bots.turns import Brain
from handoff.stats import Period, PeriodError, period_of
from tests.telegram_harness import running_bot

ANNA, BORIS, VERA = 7401, 7402, 7403
TOKEN = "stats-token-0123456789"


async def test_stats_of_scripted_conversations(
        settings: Settings, brain: Brain, monkeypatch: pytest.MonkeyPatch) -> None:
    async with running_bot(settings, brain, api_token=TOKEN) as bot:
        await bot.exchange(ANNA, "привет")  # the bot alone: deflected
        await bot.exchange(ANNA, "до свидания")
        await bot.exchange(BORIS, "оператор")  # asks for a human
        await bot.exchange(VERA, "какая погода на марсе")  # not understood...
        await bot.exchange(VERA, "погода на марсе какая будет")  # ...twice: handed off
        port = bot.runtime.settings.http_port
        async with aiohttp.ClientSession() as http:
            url = f"http://127.0.0.1:{port}/api/v1/stats"
            headers = {"Authorization": f"Bearer {TOKEN}"}
            async with http.get(url, params={"days": "1"}, headers=headers) as response:
                assert response.status == 200
                report = await response.json()
            async with http.get(url, params={"since": "yesterday"}, headers=headers) as bad:
                assert bad.status == 400 and "YYYY-MM-DD" in (await bad.json())["error"]
            async with http.get(url, params={"days": "2", "since": "2026-01-01"},
                                headers=headers) as both:
                assert both.status == 400

    assert report["turns"] == 5 and report["fallbacks"] == 2 and report["fallback_rate"] == 0.4
    assert report["conversations"] == 3 and report["handed_off"] == 2
    assert report["deflection_rate"] == pytest.approx(1 / 3, abs=1e-4)
    assert {item["intent"]: item["turns"] for item in report["intents"]} == {
        "greet": 1, "goodbye": 1, "request_human": 1, "out_of_scope": 2}
    assert {item["reason"]: item["handoffs"] for item in report["handoff_reasons"]} == {
        "customer_request": 1, "fallback": 1}
    (theme,) = report["unrecognized_themes"]
    assert (theme["text"], theme["messages"], theme["conversations"]) == (
        "какая погода на марсе", 2, 1)
    assert theme["top_guess"]  # the NLU's most frequent best guess, whatever it is
    assert report["since"] == report["until"] == datetime.now(UTC).date().isoformat()

    # the same numbers through the CLI, while the counters are still in Redis
    for name, value in {"REDIS_URL": settings.redis_url or "",
                        "REDIS_PREFIX": settings.redis_prefix}.items():
        monkeypatch.setenv(name, value)
    monkeypatch.setattr(console, "width", 200)
    runner = CliRunner()
    printed = await asyncio.to_thread(runner.invoke, app, ["stats", "--days", "1"])
    assert printed.exit_code == 0, printed.output
    for expected in ("bot turns", "40.0 % (2 turns)", "33.3 % (1 without a human)",
                     "customer_request", "какая погода на марсе", "out_of_scope"):
        assert expected in printed.output
    exported = await asyncio.to_thread(runner.invoke, app, ["stats", "--days", "1", "--csv", "-"])
    rows = list(csv.reader(io.StringIO(exported.output)))
    assert rows[0] == ["section", "name", "value", "extra"]
    assert ["summary", "deflection_rate", "0.3333", ""] in rows
    assert ["handoff_reason", "fallback", "1", ""] in rows
    assert ["intent", "greet", "1", ""] in rows
    wrong = await asyncio.to_thread(runner.invoke, app, ["stats", "--days", "2", "--since",
                                                         "2026-01-01"])
    assert wrong.exit_code == 1 and "either --days or --since" in wrong.output


def test_periods() -> None:
    today = date(2026, 12, 1)
    assert period_of(None, None, None, today) == Period(date(2026, 11, 25), today)
    assert period_of(None, None, 1, today).days == ["2026-12-01"]
    assert period_of(date(2026, 11, 30), None, None, today).days == ["2026-11-30", "2026-12-01"]
    assert period_of(None, date(2026, 11, 10), None, today).first == date(2026, 11, 4)
    with pytest.raises(PeriodError, match="before it starts"):
        period_of(date(2026, 12, 2), date(2026, 12, 1), None, today)
    with pytest.raises(PeriodError, match="at most 366"):
        period_of(date(2024, 1, 1), None, None, today)
