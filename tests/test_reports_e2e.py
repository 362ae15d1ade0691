"""The operators' report of a scripted conversation through the running bot: the desk in the
fake Bot API, the counters written by the scripts, the report through the HTTP API (JSON and
CSV) and the CLI (tables and CSV)."""

from __future__ import annotations

import asyncio
import csv
import io
import json

import aiohttp
import pytest
from typer.testing import CliRunner

from bots.cli.common import console
from bots.cli.main import app
from bots.settings import Settings
from bots.turns import Brain
from fakes.telegram import FakeTelegram
from handoff.records import COLUMNS as RECORD_COLUMNS
from handoff.reports import COLUMNS
from tests.conftest import FAKE_TOKEN
from tests.telegram_harness import running_bot, wait_until
from tests.test_desk_e2e import CUSTOMER, DESK, OPERATOR_A, buttons, handed_off, press

TOKEN = "reports-token-0123456789"


def metric_values(text: str) -> dict[str, float]:
    """Prometheus text format: `name{labels} value` lines, by their name and labels."""
    values = {}
    for line in text.splitlines():
        if line and not line.startswith("#"):
            name, _, value = line.rpartition(" ")
            values[name] = float(value)
    return values


async def test_a_handled_conversation_in_the_report(
    settings: Settings, brain: Brain, monkeypatch: pytest.MonkeyPatch
) -> None:
    async with FakeTelegram(token=FAKE_TOKEN, enforce_limits=True) as fake:
        fake.add_group(DESK, "Поддержка", is_forum=True)
        async with running_bot(settings, brain, fake=fake, operator_chat_id=DESK,
                               api_token=TOKEN) as bot:
            thread, card = await handed_off(bot)
            told = len(await wait_until(lambda: bot.texts_to(CUSTOMER),
                                        lambda got: any("в очереди" in t for t in got), 5,
                                        "the queue notice"))
            metrics_url = f"http://127.0.0.1:{bot.runtime.settings.http_port}/metrics"
            async with aiohttp.ClientSession() as http, http.get(metrics_url) as response:
                waiting = metric_values(await response.text())
            await press(bot, OPERATOR_A, card, "Взять", name="Ольга")
            await bot.wait_texts(CUSTOMER, told + 1)
            bot.fake.push_update(bot.fake.group_message_update(
                DESK, OPERATOR_A, "Здравствуйте! Чем помочь?", thread_id=thread,
                first_name="Ольга"))
            await bot.wait_texts(CUSTOMER, told + 2)
            bot.fake.push_update(bot.fake.group_message_update(
                DESK, OPERATOR_A, "/close решено", thread_id=thread))
            rating = await wait_until(lambda: bot.fake.messages_to(CUSTOMER),
                                      lambda m: len(m) >= told + 3, 5, "the rating request")
            bot.fake.push_update(bot.fake.callback_update(
                CUSTOMER, buttons(rating[-1])["4"], message_id=rating[-1]["message_id"]))
            await wait_until(lambda: bot.runtime.redis.hgetall(
                bot.runtime.keys.ratings(f"tg:{OPERATOR_A}")), lambda r: r.get("4") == "1", 5,
                "the stored rating")
            await bot.exchange(CUSTOMER, "Ольга помогла, спасибо")  # the comment

            async with aiohttp.ClientSession() as http, http.get(metrics_url) as response:
                after = metric_values(await response.text())
            bot.fake.push_update(bot.fake.group_message_update(
                DESK, OPERATOR_A, "/stats today", first_name="Ольга"))
            desk_report = await wait_until(
                lambda: [m.get("text", "") for m in bot.fake.messages_to(DESK)
                         if m.get("text", "").startswith("📊")], bool, 5, "the desk's report")
            url = f"http://127.0.0.1:{bot.runtime.settings.http_port}/api/v1/reports/operators"
            headers = {"Authorization": f"Bearer {TOKEN}"}
            async with aiohttp.ClientSession(headers=headers) as http:
                async with http.get(url, params={"period": "today"}) as response:
                    assert response.status == 200
                    report = await response.json()
                async with http.get(url, params={"period": "7d", "format": "csv"}) as response:
                    assert response.headers["Content-Type"].startswith("text/csv")
                    table = list(csv.reader(io.StringIO(await response.text())))
                async with http.get(url, params={"period": "weekly"}) as bad:
                    assert bad.status == 400 and "unknown period" in (await bad.json())["error"]
                base = url.removesuffix("/reports/operators")
                async with http.get(f"{base}/records", params={
                        "operator": f"tg:{OPERATOR_A}", "text": "ЧЕМ помочь", "rating": "4"}) as r:
                    (record,) = (await r.json())["records"]
                async with http.get(f"{base}/records", params={"text": "никто не писал"}) as r:
                    assert (await r.json())["records"] == []
                async with http.get(f"{base}/records", params={"format": "csv"}) as r:
                    record_rows = list(csv.reader(io.StringIO(await r.text())))
                export_url = f"{base}/conversations/{record['conversation']}/handoffs/" \
                             f"{record['closed']}"
                async with http.get(export_url) as r:
                    exported = await r.json()
                async with http.get(f"{base}/conversations/tg:1/handoffs/12.5") as r:
                    assert r.status == 404
            async with aiohttp.ClientSession() as http, http.get(url) as anonymous:
                assert anonymous.status == 401

    assert waiting["supportbot_queue_length"] == 1
    assert waiting["supportbot_queue_oldest_wait_seconds"] >= 0
    assert after["supportbot_queue_length"] == 0
    assert after[f'supportbot_operator_chats{{operator="tg:{OPERATOR_A}"}}'] == 0
    assert after['supportbot_operators{status="online"}'] == 1
    assert after["supportbot_handle_seconds_count"] == 1
    assert after["supportbot_first_reaction_seconds_count"] == 1
    assert after['supportbot_first_reaction_seconds_bucket{le="+Inf"}'] == 1

    assert "взято 1, закрыто 1, боту 0, передано 0, пик 1 чат." in desk_report[-1]
    assert "первая реакция p50" in desk_report[-1] and "оценка 4.0 (1: 4★1)" in desk_report[-1]

    assert (record["owner"], record["outcome"], record["rating"], record["comment"]) == (
        f"tg:{OPERATOR_A}", "close", 4, "Ольга помогла, спасибо")
    assert record["customer"] == "Иван" and record["close_reason"] == "решено"  # the name now
    assert record_rows[0] == list(RECORD_COLUMNS) and len(record_rows) == 2
    said = [entry["text"] for entry in exported["transcript"]]
    assert "позовите оператора" in said and "Здравствуйте! Чем помочь?" in said

    olga = report["operators"][f"tg:{OPERATOR_A}"]
    assert olga["counts"]["taken"] == 1 and olga["counts"]["closed"] == 1
    assert olga["durations"]["first_reaction"]["count"] == 1
    assert olga["durations"]["handle"]["count"] == 1
    assert olga["peak_parallel"] == 1
    assert olga["csat"] == {"ratings": 1, "average": 4.0, "comments": 1,
                            "distribution": {"1": 0, "2": 0, "3": 0, "4": 1, "5": 0}}
    assert report["channels"]["tg"]["counts"]["closed"] == 1
    assert [c["text"] for c in report["comments"]] == ["Ольга помогла, спасибо"]
    assert table[0] == list(COLUMNS)
    row = next(r for r in table if r[:2] == ["operator", f"tg:{OPERATOR_A}"])
    assert row[COLUMNS.index("closed")] == "1" and row[COLUMNS.index("csat_avg")] == "4"

    # the same figures through the CLI, while the counters are still in Redis
    for name, value in {"REDIS_URL": settings.redis_url or "",
                        "REDIS_PREFIX": settings.redis_prefix}.items():
        monkeypatch.setenv(name, value)
    monkeypatch.setattr(console, "width", 250)
    runner = CliRunner()
    printed = await asyncio.to_thread(runner.invoke, app, ["report", "operators"])
    assert printed.exit_code == 0, printed.output
    assert f"operator tg:{OPERATOR_A}" in printed.output and "Ольга помогла" in printed.output
    exported = await asyncio.to_thread(
        runner.invoke, app, ["report", "operators", "--period", "30d", "--csv", "-"])
    assert next(csv.reader(io.StringIO(exported.output))) == list(COLUMNS)
    searched = await asyncio.to_thread(
        runner.invoke, app, ["records", "search", "--customer", "иван", "--csv", "-"])
    assert list(csv.reader(io.StringIO(searched.output)))[1][0] == record["conversation"]
    dumped = await asyncio.to_thread(runner.invoke, app, [
        "records", "export", record["conversation"], str(record["closed"])])
    assert json.loads(dumped.output)["record"]["comment"] == "Ольга помогла, спасибо"
    wrong = await asyncio.to_thread(
        runner.invoke, app, ["report", "operators", "--from", "2026-13-01"])
    assert wrong.exit_code == 1 and "YYYY-MM-DD" in wrong.output
