"""The bot's HTTP server under abuse: token guessing and floods get 429 with Retry-After, too
many requests at once get 503 instead of exhausting Redis's pool, a body that never arrives is a
408, and a client leaving mid-body is a line in the log, not an error."""

from __future__ import annotations

import asyncio
import logging

import aiohttp
import pytest
from aiohttp import web
from aiohttp.test_utils import make_mocked_request

import bots.http_guard
import handoff.jsonbody
from bots.http_guard import Guard, GuardConfig
from bots.logsummary import Summarized
from bots.runtime import Tuning
from bots.settings import Settings
from bots.telegram.webhook import SECRET_HEADER, WEBHOOK_PATH
from bots.turns import Brain
from tests.telegram_harness import running_bot

TOKEN = "guard-api-token-0123456789"
SECRET = "guard-webhook-0123456789"
NUL_TOKEN = "not-a-secret-but-not-for-the-log-either"


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_a_flood_from_one_client_is_paced_and_others_are_not_affected() -> None:
    clock = Clock()
    guard = Guard(GuardConfig(per_client_rate=10, per_client_burst=20), clock=clock)
    answers = [guard.refusal("10.0.0.1", per_client=True) for _ in range(25)]
    assert answers[:20] == [None] * 20
    refused = answers[20]
    assert refused is not None and refused.status == 429 and refused.headers["Retry-After"] == "1"
    assert guard.refusal("10.0.0.2", per_client=True) is None  # someone else
    clock.now += 1.0
    assert guard.refusal("10.0.0.1", per_client=True) is None  # ten a second again


def test_guessing_the_token_costs_a_minute_per_handful_of_tries() -> None:
    clock = Clock()
    guard = Guard(GuardConfig(failed_auth_limit=5), clock=clock)
    for _ in range(5):
        guard.failed_auth("10.0.0.9")
    refused = guard.refusal("10.0.0.9", per_client=True)
    assert refused is not None and refused.status == 429
    assert refused.headers["Retry-After"] == "60"
    clock.now += 61
    assert guard.refusal("10.0.0.9", per_client=True) is None


def test_one_token_is_paced_from_every_address() -> None:
    clock = Clock()
    guard = Guard(GuardConfig(per_token_rate=5, per_token_burst=10), clock=clock)
    token = "Bearer one-integration-token"
    answers = [guard.refusal(f"10.0.1.{n}", per_client=True, authorization=token)
               for n in range(12)]  # twelve hosts, one request each
    assert answers[:10] == [None] * 10
    refused = answers[10]
    assert refused is not None and refused.status == 429 and refused.headers["Retry-After"] == "1"
    assert guard.refusal("10.0.1.99", per_client=True, authorization="Bearer other") is None
    clock.now += 1.0
    assert guard.refusal("10.0.1.1", per_client=True, authorization=token) is None


async def raw(port: int, request: bytes, source: str = "127.0.0.1"
              ) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    """A connection from `source` (any 127.x.y.z is this machine: another client)."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port, local_addr=(source, 0))
    writer.write(request)
    await writer.drain()
    return reader, writer


def from_address(source: str) -> aiohttp.ClientSession:
    return aiohttp.ClientSession(connector=aiohttp.TCPConnector(local_addr=(source, 0)))


def test_a_busy_server_answers_503_at_once() -> None:
    guard = Guard(GuardConfig(max_in_flight=2))
    guard.in_flight = 2
    refused = guard.refusal("10.0.0.5", per_client=False)
    assert refused is not None and refused.status == 503 and refused.headers["Retry-After"] == "1"


async def test_the_server_refuses_guessing_slow_bodies_and_crowds(
    settings: Settings, brain: Brain, monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    monkeypatch.setattr(handoff.jsonbody, "BODY_TIMEOUT", 1.0)
    monkeypatch.setattr(bots.http_guard, "HEADER_TIMEOUT", 1.0)
    caplog.set_level(logging.INFO)
    tuning = Tuning(http_guard=GuardConfig(max_reading_per_client=2, failed_auth_limit=5))
    async with running_bot(
        settings, brain, tuning=tuning, api_token=TOKEN, telegram_mode="webhook",
        telegram_webhook_secret=SECRET,
        telegram_webhook_url=f"http://127.0.0.1:{settings.http_port}",
    ) as bot:
        await bot.fake.wait_for("setWebhook")
        port = settings.http_port
        base = f"http://127.0.0.1:{port}"
        async with from_address("127.0.0.2") as guesser, aiohttp.ClientSession() as http:
            statuses = []
            for _ in range(7):
                async with guesser.get(f"{base}/api/v1/queue",
                                       headers={"Authorization": "Bearer guess"}) as answer:
                    statuses.append(answer.status)
            assert statuses == [401] * 5 + [429] * 2
            assert answer.headers["Retry-After"] == "60"
            # Locked out whatever it tries next, the webhook included ...
            async with guesser.post(base + WEBHOOK_PATH, data=b"{}") as locked:
                assert locked.status == 429
            # ... except with the right token; and other clients were never affected.
            right = {"Authorization": f"Bearer {TOKEN}"}
            async with guesser.get(f"{base}/api/v1/queue", headers=right) as allowed:
                assert allowed.status == 200
            async with http.get(f"{base}/api/v1/queue", headers=right) as other:
                assert other.status == 200

            # A body promised and never sent: 408 after the timeout, not an open connection.
            slow = (f"POST {WEBHOOK_PATH} HTTP/1.1\r\nHost: x\r\n{SECRET_HEADER}: {SECRET}\r\n"
                    "Content-Length: 1000\r\n\r\n12345678").encode()
            reader, writer = await raw(port, slow, "127.0.0.3")
            status_line = await asyncio.wait_for(reader.readline(), 5)
            assert b" 408 " in status_line
            writer.close()

            # Two slow ones hold their client's two places: its third is turned away at once,
            # while everyone else (Telegram delivering an update) is served as usual.
            held = [await raw(port, slow, "127.0.0.3") for _ in range(2)]
            await asyncio.sleep(0.2)
            reader, writer = await raw(port, slow, "127.0.0.3")
            assert b" 429 " in await asyncio.wait_for(reader.readline(), 1)
            writer.close()
            update = {**bot.fake.text_update(4242, "привет"), "update_id": 4242}
            async with http.post(base + WEBHOOK_PATH, json=update,
                                 headers={SECRET_HEADER: SECRET}) as delivered:
                assert delivered.status == 200
            for _reader, writer in held:
                writer.close()  # and leaving mid-body is not our error
            await bot.wait_texts(4242, 1)

            # Headers trickling in (slowloris): the connection is closed after the timeout.
            reader, writer = await raw(port, b"GET /healthz HTTP/1.1\r\nHost: x\r\n")
            started = asyncio.get_running_loop().time()
            assert await asyncio.wait_for(reader.read(), 5) == b""
            assert 0.5 < asyncio.get_running_loop().time() - started < 4
            writer.close()

            # A NUL in a header: aiohttp's 400, and the header's value is nowhere in the log.
            reader, writer = await raw(port, (
                f"GET /api/v1/queue HTTP/1.1\r\nHost: x\r\n"
                f"Authorization: Bearer {NUL_TOKEN}\x00x\r\n\r\n").encode())
            assert b" 400 " in await asyncio.wait_for(reader.readline(), 5)
            writer.close()
    errors = [r for r in caplog.records if r.levelno >= logging.ERROR]
    assert errors == [], [r.getMessage() for r in errors]
    assert NUL_TOKEN not in caplog.text
    assert "malformed HTTP request from 127.0.0.1: Invalid header value char (answered 400)" \
        in caplog.text


def test_behind_a_trusted_proxy_the_client_is_the_forwarded_address() -> None:
    guard = Guard(trusted_proxies=frozenset({"10.9.9.9"}))

    def request(peer: str, forwarded: str) -> web.Request:
        transport = Transport(peer)
        return make_mocked_request("GET", "/api/v1/queue", transport=transport,
                                   headers={"X-Forwarded-For": forwarded})

    assert guard.address(request("10.9.9.9", "203.0.113.7")) == "203.0.113.7"
    # A client cannot pick its own address by sending the header: only the proxy's last hop.
    assert guard.address(request("10.9.9.9", "1.1.1.1, 203.0.113.7")) == "203.0.113.7"
    assert guard.address(request("198.51.100.4", "1.1.1.1")) == "198.51.100.4"


class Transport:
    """Enough of a transport for aiohttp's `request.remote`."""

    def __init__(self, peer: str) -> None:
        self.peer = peer

    def get_extra_info(self, name: str, default: object = None) -> object:
        return (self.peer, 40000) if name == "peername" else default


def test_repeated_refusals_are_logged_once_a_minute(caplog: pytest.LogCaptureFixture) -> None:
    clock = Clock()
    summary = Summarized(logging.getLogger("test.flood"), clock=clock)
    with caplog.at_level(logging.WARNING, "test.flood"):
        for _ in range(1000):
            summary.warning("wrong secrets", "wrong secret from %s", "10.0.0.1")
        clock.now += 61
        summary.warning("wrong secrets", "wrong secret from %s", "10.0.0.2")
    assert [r.getMessage() for r in caplog.records] == [
        "wrong secret from 10.0.0.1", "wrong secrets: 999 more in the last 61 s",
        "wrong secret from 10.0.0.2"]
