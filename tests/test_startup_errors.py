"""Start-up failures are one line saying what to fix, with exit 2 (configuration) or 1 (machine).

Each test runs the real `supportbot run` as a subprocess; nothing leaves 127.0.0.1.
"""

from __future__ import annotations

import asyncio
import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis as sync_redis

from fakes.telegram import FakeTelegram
from handoff.embedded_redis import find_redis_server, free_port

CLI = [sys.executable, "-c", "from bots.cli.main import main; main()", "run"]
FAKE_TOKEN = "123456:TEST-token"
TIMEOUT = 90  # seconds for one start-up (the first may train the NLU model into CACHE_DIR)
MAX_STDERR_LINES = 3


def cli_env(tmp_path: Path, cache: Path, **extra: str) -> dict[str, str]:
    keep = {k: v for k, v in os.environ.items()
            if not k.startswith(("TELEGRAM_", "REDIS_", "VK_"))}
    return {**keep, "DATA_DIR": str(tmp_path / "data"), "CACHE_DIR": str(cache),
            "LOG_LEVEL": "WARNING", "COLUMNS": "300", **extra}


def run_cli(tmp_path: Path, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(CLI, env=env, cwd=tmp_path, capture_output=True, text=True,
                          timeout=TIMEOUT, stdin=subprocess.DEVNULL)


def assert_one_line(result: subprocess.CompletedProcess[str], code: int, *names: str) -> None:
    detail = f"exit {result.returncode}\nstdout:\n{result.stdout}\nstderr:\n{result.stderr}"
    assert result.returncode == code, detail
    assert "Traceback" not in result.stderr, detail
    lines = result.stderr.strip().splitlines()
    assert 1 <= len(lines) <= MAX_STDERR_LINES, detail
    for name in names:
        assert name in result.stderr, detail


def test_a_malformed_redis_url_is_one_line(tmp_path: Path, model_cache: Path) -> None:
    env = cli_env(tmp_path, model_cache, REDIS_URL="redis//nope",
                  TELEGRAM_BOT_TOKEN=FAKE_TOKEN, TELEGRAM_API_URL="http://127.0.0.1:9")
    assert_one_line(run_cli(tmp_path, env), 2, "REDIS_URL")


@pytest.fixture
def redis_with_password(tmp_path: Path) -> Iterator[int]:
    """A real redis-server on a free port that requires the password "right"."""
    port = free_port()
    server = subprocess.Popen(
        [find_redis_server(), "--port", str(port), "--bind", "127.0.0.1", "--requirepass",
         "right", "--save", "", "--appendonly", "no", "--dir", str(tmp_path)],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )
    try:
        client = sync_redis.Redis(port=port, password="right", socket_connect_timeout=0.5)
        deadline = time.monotonic() + 10
        while True:
            try:
                client.ping()
                break
            except sync_redis.ConnectionError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.05)
        client.close()
        yield port
    finally:
        server.terminate()
        server.wait(10)


@pytest.mark.parametrize("credentials", [":wrong@", ""], ids=["wrong-password", "no-password"])
def test_a_rejected_redis_password_is_one_line_and_quick(
    tmp_path: Path, model_cache: Path, redis_with_password: int, credentials: str
) -> None:
    env = cli_env(tmp_path, model_cache,
                  REDIS_URL=f"redis://{credentials}127.0.0.1:{redis_with_password}/0",
                  TELEGRAM_BOT_TOKEN=FAKE_TOKEN, TELEGRAM_API_URL="http://127.0.0.1:9")
    started = time.monotonic()
    result = run_cli(tmp_path, env)
    assert time.monotonic() - started < 20
    assert_one_line(result, 2, "REDIS_URL")
    assert "wrong" not in result.stderr  # the password is not echoed


async def test_the_http_port_in_use_is_one_line(
    tmp_path: Path, model_cache: Path, redis_url: str
) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        async with FakeTelegram(token=FAKE_TOKEN) as fake:
            env = cli_env(tmp_path, model_cache, REDIS_URL=redis_url,
                          REDIS_PREFIX=f"t{port}:", TELEGRAM_BOT_TOKEN=FAKE_TOKEN,
                          TELEGRAM_API_URL=fake.url, HTTP_PORT=str(port))
            result = await asyncio.to_thread(run_cli, tmp_path, env)
    assert_one_line(result, 1, f"HTTP_PORT {port}")


async def test_a_token_telegram_rejects_is_one_line(
    tmp_path: Path, model_cache: Path, redis_url: str
) -> None:
    async with FakeTelegram(token=FAKE_TOKEN) as fake:
        env = cli_env(tmp_path, model_cache, REDIS_URL=redis_url,
                      REDIS_PREFIX=f"t{free_port()}:", TELEGRAM_BOT_TOKEN="654321:OTHER-token",
                      TELEGRAM_API_URL=fake.url, HTTP_PORT=str(free_port()))
        result = await asyncio.to_thread(run_cli, tmp_path, env)
    assert_one_line(result, 2, "TELEGRAM_BOT_TOKEN")
    assert "OTHER-token" not in result.stderr
