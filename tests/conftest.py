"""Shared fixtures: a real Redis, the trained demo brain, settings isolated per test."""

from __future__ import annotations

import asyncio
import logging
import os
import signal
import sys
import threading
import traceback
import uuid
import weakref
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import aiohttp
import pytest
import redis.asyncio as aioredis

from bots.redact import CONFIGURED, secret_forms
from bots.settings import Settings, load_settings
from handoff.clock import FakeClock
from handoff.embedded_redis import EmbeddedRedis, free_port
from handoff.keys import Keys
from handoff.service import HandoffService
from tests.test_handoff_support import START, make_keys, make_service

pytest_plugins = ["tests.browser_harness"]  # real Chromium pages, screenshots on failure

if TYPE_CHECKING:
    from bots.turns import Brain

FAKE_TOKEN = "123456:TEST-token"
HANG_REPORT_AFTER = 150.0  # seconds; pytest-timeout fails the test at 180 (pyproject)


def _print_asyncio_tasks(_signum: int, _frame: object) -> None:
    """A hung asyncio test sits in the event loop's select: the threads' stacks pytest-timeout
    prints say nothing. The tasks' own stacks say what each one awaits."""
    loop = asyncio._get_running_loop()
    if loop is None:
        return
    print(f"\n--- asyncio tasks after {HANG_REPORT_AFTER:.0f} s ---", file=sys.__stderr__)
    for task in asyncio.all_tasks(loop):
        task.print_stack(file=sys.__stderr__)


signal.signal(signal.SIGUSR1, _print_asyncio_tasks)


_connectors: list[tuple[weakref.ref[aiohttp.BaseConnector], str]] = []
_connector_init = aiohttp.BaseConnector.__init__


def _tracked_init(self: aiohttp.BaseConnector, *args: Any, **kwargs: Any) -> None:
    _connector_init(self, *args, **kwargs)
    _connectors.append((weakref.ref(self), "".join(traceback.format_stack(limit=25)[:-1])))


aiohttp.BaseConnector.__init__ = _tracked_init  # type: ignore[method-assign]


@pytest.fixture(autouse=True)
def _no_connection_left_open() -> Iterator[None]:
    """Every aiohttp connector a test opens (bots, fakes, clients) is closed when it ends.

    One left open is garbage-collected during some later test and warns there, at random; here
    it fails the test that leaked it, with where it was made."""
    _connectors.clear()
    yield
    left = [stack for ref, stack in _connectors
            if (connector := ref()) is not None and not connector.closed]
    _connectors.clear()
    if left:
        pytest.fail(f"{len(left)} aiohttp connector(s) left open; the first was made at:\n"
                    f"{left[0]}", pytrace=False)


@pytest.fixture(scope="session", autouse=True)
def _no_secret_in_any_log(tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    """Every line logged in the whole run (tracebacks included) goes to a file; at the end none
    may hold a secret that any runtime of the run was configured with (bots/redact.py)."""
    path = tmp_path_factory.mktemp("logs") / "run.log"
    handler = logging.FileHandler(path, encoding="utf-8")
    handler.setFormatter(logging.Formatter("%(levelname)s %(name)s: %(message)s"))
    logging.getLogger().addHandler(handler)
    yield
    logging.getLogger().removeHandler(handler)
    handler.close()
    text = path.read_text(encoding="utf-8")
    leaked = sorted(form for form in secret_forms(CONFIGURED) if form in text)
    assert text and CONFIGURED, "the run logged nothing, or configured no secret: no check"
    assert not leaked, f"secrets in the log of the test run ({path}): {leaked}"


@pytest.fixture(autouse=True)
def _report_a_hang() -> Iterator[None]:
    main = threading.main_thread().ident
    assert main is not None
    timer = threading.Timer(HANG_REPORT_AFTER, signal.pthread_kill, (main, signal.SIGUSR1))
    timer.daemon = True
    timer.start()
    yield
    timer.cancel()


@pytest.fixture(scope="session")
def redis_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """REDIS_URL when set; otherwise a throw-away server on a free port, nothing on disk."""
    url = os.environ.get("REDIS_URL")
    if url:
        yield url
        return
    with EmbeddedRedis(tmp_path_factory.mktemp("redis"), persist=False) as server:
        yield server.url


@pytest.fixture(scope="session")
def model_cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("cache")


def make_settings(redis_url: str, cache_dir: Path, data_dir: Path, **overrides: object) -> Settings:
    """Settings for one test: its own key prefix, so tests never see each other's keys."""
    values: dict[str, object] = {
        "_env_file": None,
        "redis_url": redis_url,
        "redis_prefix": f"t{uuid.uuid4().hex[:10]}:",
        "cache_dir": cache_dir,
        "data_dir": data_dir,
        "http_port": free_port(),
        "ingest_shards": 4,
        "telegram_bot_token": FAKE_TOKEN,
        "telegram_poll_timeout": 1,
        "lease_seconds": 1.0,
    }
    values.update(overrides)
    return load_settings(**values)


@pytest.fixture(scope="session")
def brain(redis_url: str, model_cache: Path, tmp_path_factory: pytest.TempPathFactory) -> Brain:
    """The demo domain's NLU + flows, trained once per test session."""
    from bots.runtime import load_brain

    settings = make_settings(redis_url, model_cache, tmp_path_factory.mktemp("data"))
    return load_brain(settings)


@pytest.fixture
def settings(redis_url: str, model_cache: Path, tmp_path: Path) -> Settings:
    return make_settings(redis_url, model_cache, tmp_path)


@pytest.fixture
async def redis(redis_url: str) -> AsyncIterator[aioredis.Redis]:
    client = aioredis.Redis.from_url(redis_url, decode_responses=True)
    yield client
    await client.aclose()



# --- the handoff service on a fake clock (tests/test_handoff_*.py, tests/test_api.py) -------
@pytest.fixture
def keys() -> Keys:
    """Keys under a prefix of their own: tests never see each other's data."""
    return make_keys()


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock(START)


@pytest.fixture
def service(redis: aioredis.Redis, keys: Keys, clock: FakeClock) -> HandoffService:
    return make_service(redis, keys, clock)
