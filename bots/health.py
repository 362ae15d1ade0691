"""Roles that never die of an outage, and what `/healthz` says about them.

`supervise` runs one role of `supportbot run` (the worker, a sender, a poller, the desk
scheduler, the reloader) until `stop`: when the role fails — Redis restarted, a failover, a bug
— it is logged, reported unhealthy, and started again with back-off; its state is in Redis, so
a fresh start carries on where the failed one stopped. A role is reported healthy again once
it has run for `settle` seconds without failing.

`/healthz` answers 503 with the reasons while Redis does not answer a PING or any role is down,
so an orchestrator (Docker's health check, Kubernetes) sees a sick process without it exiting.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable

from aiohttp import web
from redis.asyncio import Redis

from bots.backoff import Backoff, describe, redis_unreachable

log = logging.getLogger(__name__)

PING_TIMEOUT = 1.0  # seconds: a Redis slower than this is as good as away for a health check


class FatalRoleError(RuntimeError):
    """A role cannot go on whatever we retry (the platform rejected the token): the process
    stops with this message instead of restarting the role forever."""


class Health:
    """Which roles are down now, and why (what `/healthz` reports besides Redis itself)."""

    def __init__(self) -> None:
        self._down: dict[str, str] = {}
        self.roles: set[str] = set()

    def failed(self, role: str, reason: str) -> None:
        self._down[role] = reason

    def running(self, role: str) -> None:
        self.roles.add(role)
        self._down.pop(role, None)

    def problems(self) -> list[str]:
        return [f"{role}: {reason}" for role, reason in sorted(self._down.items())]

    async def report(self, redis: Redis) -> tuple[bool, dict[str, object]]:
        problems = self.problems()
        try:
            await asyncio.wait_for(redis.ping(), PING_TIMEOUT)
        except Exception as exc:  # any failure to answer is the reason, whatever its type
            problems.insert(0, f"redis: {describe(exc)}")
        body: dict[str, object] = {"ok": not problems, "roles": sorted(self.roles)}
        if problems:
            body["problems"] = problems
        return not problems, body


def health_route(health: Health, redis: Redis) -> web.RouteDef:
    async def healthz(_request: web.Request) -> web.Response:
        ok, body = await health.report(redis)
        return web.json_response(body, status=200 if ok else 503)

    return web.get("/healthz", healthz)


async def supervise(
    name: str, run: Callable[[asyncio.Event], Awaitable[None]], stop: asyncio.Event,
    health: Health, *, settle: float = 3.0, backoff: Backoff | None = None,
) -> None:
    """Run `run(stop)` until `stop` is set, starting it again whenever it fails or returns."""
    backoff = backoff or Backoff(first=0.2)
    while not stop.is_set():
        started = time.monotonic()
        task = asyncio.create_task(_run_role(run, stop), name=name)
        marker = asyncio.create_task(_healthy_after(name, health, settle), name=f"{name} health")
        try:
            failure = await task
        finally:
            marker.cancel()
            task.cancel()
            await asyncio.gather(task, marker, return_exceptions=True)
        if stop.is_set():
            return
        if time.monotonic() - started > settle:  # it had been running fine: a new outage
            backoff.reset()
        reason = describe(failure) if failure else "stopped by itself"
        health.failed(name, reason)
        if backoff.failed():
            if failure is None or redis_unreachable(failure):
                log.error("%s: %s (failure %d in a row); restarting", name, reason,
                          backoff.failures)
            else:
                log.error("%s failed (%d in a row); restarting", name, backoff.failures,
                          exc_info=failure)
        await backoff.wait(stop)


async def _run_role(run: Callable[[asyncio.Event], Awaitable[None]],
                    stop: asyncio.Event) -> Exception | None:
    """What ended the role: its error, or None (`stop`, or it returned by itself)."""
    try:
        await run(stop)
    except (asyncio.CancelledError, FatalRoleError):
        raise
    except Exception as exc:
        return exc
    return None


async def _healthy_after(name: str, health: Health, settle: float) -> None:
    await asyncio.sleep(settle)
    health.running(name)
