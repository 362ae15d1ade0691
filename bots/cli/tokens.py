"""`supportbot tokens`: HTTP API tokens per role, shown once, stored hashed, revocable."""

from __future__ import annotations

import time
from datetime import datetime
from typing import Annotated
from zoneinfo import ZoneInfo

import redis.asyncio as aioredis
import typer
from rich.table import Table

from bots.cli.common import EXIT_DATA_ERROR, console, err_console
from bots.cli.inbox import with_redis
from bots.settings import Settings
from handoff.keys import Keys
from handoff.tokens import PERMISSIONS, TOKEN_ROLES, ApiTokens, TokenInfo

app = typer.Typer(help="HTTP API tokens per role (docs/api.md, Tokens).", no_args_is_help=True)


@app.command("create")
def create_command(
    name: Annotated[str, typer.Argument(help="What the token is for, e.g. crm.")],
    role: Annotated[str, typer.Option(help=f"One of {', '.join(TOKEN_ROLES)}.")],
    by: Annotated[str, typer.Option(help="Who makes it (kept with it).")] = "cli",
) -> None:
    """Make a token; it is printed once and only its hash is kept."""

    async def work(_settings: Settings, client: aioredis.Redis, keys: Keys) -> str | None:
        try:
            return await ApiTokens(client, keys).create(name, role, by, time.time())  # type: ignore[arg-type]
        except ValueError as exc:
            err_console.print(f"[red]{exc}[/red]")
            return None

    token = with_redis(work)
    if token is None:
        raise typer.Exit(EXIT_DATA_ERROR)
    reach = "every endpoint" if role == "admin" else ", ".join(sorted(PERMISSIONS[role]))  # type: ignore[index]
    console.print(f"{token}\n(shown once; a {role} token reaches: {reach})", highlight=False)


@app.command("list")
def list_command() -> None:
    """The tokens by name and role (never the tokens themselves)."""

    async def work(settings: Settings, client: aioredis.Redis, keys: Keys
                   ) -> tuple[str, list[TokenInfo]]:
        return settings.timezone, await ApiTokens(client, keys).list()

    zone, tokens = with_redis(work)
    table = Table("name", "role", "created", "by", title="API tokens")
    for token in tokens:
        created = datetime.fromtimestamp(token.created_at, ZoneInfo(zone))
        table.add_row(token.name, token.role, created.strftime("%Y-%m-%d %H:%M"),
                      token.created_by)
    console.print(table)


@app.command("revoke")
def revoke_command(name: Annotated[str, typer.Argument()]) -> None:
    """Revoke a token at once: its next request is refused."""

    async def work(_settings: Settings, client: aioredis.Redis, keys: Keys) -> bool:
        return await ApiTokens(client, keys).revoke(name)

    if not with_redis(work):
        err_console.print(f"[red]no token named {name!r}[/red]")
        raise typer.Exit(EXIT_DATA_ERROR)
    console.print(f"{name}: revoked", highlight=False)
