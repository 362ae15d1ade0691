"""API tokens per role and the roles API, through the running bot: a token made with the CLI
reaches its role's endpoints only, a revoked one nothing; supervisors' tokens change roles."""

from __future__ import annotations

import asyncio

import aiohttp
import pytest
from typer.testing import CliRunner

from bots.cli.main import app
from bots.settings import Settings
from bots.turns import Brain
from handoff.audit import JournalQuery, read_journal
from tests.telegram_harness import running_bot

ADMIN = "admin-token-0123456789"


async def test_tokens_reach_their_roles_endpoints_and_revoked_ones_nothing(
    settings: Settings, brain: Brain, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name, value in {"REDIS_URL": settings.redis_url or "",
                        "REDIS_PREFIX": settings.redis_prefix}.items():
        monkeypatch.setenv(name, value)
    runner = CliRunner()

    async def token(name: str, role: str) -> str:
        made = await asyncio.to_thread(runner.invoke, app,
                                       ["tokens", "create", name, "--role", role])
        assert made.exit_code == 0, made.output
        return made.output.split()[0]

    async with running_bot(settings, brain, api_token=ADMIN) as bot:
        crm, bi, lead = (await token("crm", "integration"), await token("bi", "reports"),
                         await token("lead", "supervisor"))
        duplicate = await asyncio.to_thread(runner.invoke, app,
                                            ["tokens", "create", "crm", "--role", "reports"])
        base = f"http://127.0.0.1:{bot.runtime.settings.http_port}/api/v1"

        async def status(secret: str, method: str, path: str, body: object = None) -> int:
            headers = {"Authorization": f"Bearer {secret}"}
            async with aiohttp.ClientSession(headers=headers) as http, \
                    http.request(method, base + path, json=body) as response:
                return response.status

        assert await status(crm, "GET", "/queue") == 200
        assert await status(crm, "GET", "/reports/operators") == 403
        assert await status(crm, "GET", "/roles") == 403
        assert await status(bi, "GET", "/reports/operators") == 200
        assert await status(bi, "GET", "/journal") == 200
        assert await status(bi, "GET", "/queue") == 403
        assert await status(lead, "POST", "/roles/tg:9101/grant",
                            {"role": "trainer", "by": "tg:1"}) == 200
        assert await status(lead, "POST", "/roles/tg:9101/grant", {"role": "boss"}) == 400
        assert await status(crm, "POST", "/roles/tg:9101/revoke", {}) == 403
        assert await status(ADMIN, "GET", "/roles") == 200
        assert await status(lead, "POST", "/roles/tg:9101/revoke",
                            {"reason": "уволен", "by": "tg:1"}) == 200
        revoked = await asyncio.to_thread(runner.invoke, app, ["tokens", "revoke", "crm"])
        assert await status(crm, "GET", "/queue") == 401
        assert await status("sbt_" + "x" * 43, "GET", "/queue") == 401
        listed = await asyncio.to_thread(runner.invoke, app, ["tokens", "list"])
        assert await bot.runtime.access.roles_of("tg:9101") == set()
        stored = await bot.runtime.redis.hgetall(bot.runtime.keys.api_tokens())
        journal = await read_journal(bot.runtime.redis, bot.runtime.keys,
                                     JournalQuery(operator="tg:9101"))

    assert duplicate.exit_code == 1 and "exists" in duplicate.output
    assert revoked.exit_code == 0
    assert "bi" in listed.output and "lead" in listed.output and "crm" not in listed.output
    assert all(secret not in str(stored) for secret in (bi, lead))  # kept hashed only
    assert [(e.action, e.actor, e.reason) for e in journal] == [
        ("revoke", "tg:1", "уволен"), ("grant", "tg:1", "trainer")]
