"""Supervised roles: a failing role is restarted with back-off and reported unhealthy until it
has run for a while; a fatal error (a rejected token) stops the process; long outages log a
handful of lines, not one a try."""

from __future__ import annotations

import asyncio
import logging

import pytest

from bots.backoff import Backoff
from bots.health import FatalRoleError, Health, supervise


async def test_a_failing_role_is_restarted_and_healthy_again_once_it_runs() -> None:
    health, stop, starts = Health(), asyncio.Event(), []

    async def role(role_stop: asyncio.Event) -> None:
        starts.append(1)
        if len(starts) < 3:
            raise ConnectionError("Connection closed by server.")
        await role_stop.wait()

    task = asyncio.create_task(supervise("worker", role, stop, health, settle=0.2,
                                         backoff=Backoff(first=0.01)))
    while len(starts) < 3:
        await asyncio.sleep(0.01)
    assert health.problems() == ["worker: Redis unreachable: Connection closed by server."]
    await asyncio.sleep(0.3)  # it has run for `settle`
    assert health.problems() == [] and health.roles == {"worker"}
    stop.set()
    await asyncio.wait_for(task, 1)
    assert len(starts) == 3


async def test_a_fatal_error_ends_the_process_instead_of_looping() -> None:
    async def role(_stop: asyncio.Event) -> None:
        raise FatalRoleError("Telegram rejected TELEGRAM_BOT_TOKEN (401 Unauthorized)")

    with pytest.raises(FatalRoleError, match="401"):
        await supervise("poller", role, asyncio.Event(), Health(), backoff=Backoff(first=0.01))


async def test_an_outage_logs_the_1st_2nd_4th_8th_failure(caplog: pytest.LogCaptureFixture
                                                          ) -> None:
    stop, tries = asyncio.Event(), []

    async def role(_stop: asyncio.Event) -> None:
        tries.append(1)
        if len(tries) == 10:
            stop.set()
        raise ConnectionError("Error 111 connecting to 127.0.0.1:6379. Connection refused.")

    with caplog.at_level(logging.ERROR, logger="bots.health"):
        await supervise("sender", role, stop, Health(), backoff=Backoff(first=0.001, cap=0.001))
    assert [record.getMessage().split("(failure ")[1].split(" ")[0]
            for record in caplog.records] == ["1", "2", "4", "8"]
