"""`supportbot console`: the operators' console accounts and one-time login links
(bots/web/console_auth.py, docs/web.md "The console")."""

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
from bots.web.console_auth import LINK_TTL, Accounts, Sessions, login_link
from handoff.access import ROLES, Access, Role
from handoff.api_models import ID_RE
from handoff.keys import Keys
from handoff.scripts import Scripts

app = typer.Typer(help="Operators' console accounts and login links (docs/web.md).",
                  no_args_is_help=True)
PASSWORD_MIN = 10

OperatorArg = Annotated[str, typer.Argument(
    help="Operator id: tg:<Telegram user id> (the same person as at the desk) or web:<name>.")]


def _checked(op: str) -> str:
    if not ID_RE.fullmatch(op):
        err_console.print(f"[red]{op!r} is not an operator id such as web:anna or tg:9101[/red]")
        raise typer.Exit(EXIT_DATA_ERROR)
    return op


def _access(settings: Settings, client: aioredis.Redis, keys: Keys) -> Access:
    from bots.runtime import handoff_config

    return Access(client, keys, Scripts(client), handoff_config(settings))


@app.command("add")
def add_command(
    op: OperatorArg,
    name: Annotated[str, typer.Option(help="The name customers and colleagues see.")],
    role: Annotated[str, typer.Option(help=f"A desk role to grant too: {', '.join(ROLES)}.")
                    ] = "operator",
    by: Annotated[str, typer.Option(help="Who makes it (kept with it, journaled).")] = "cli",
) -> None:
    """Make an account (or set a new password); the password is asked twice, never echoed."""
    _checked(op)
    if role not in ROLES:
        err_console.print(f"[red]role must be one of {', '.join(ROLES)}[/red]")
        raise typer.Exit(EXIT_DATA_ERROR)
    if not name.strip() or len(name) > 64:
        err_console.print("[red]a name of 1-64 characters, please[/red]")
        raise typer.Exit(EXIT_DATA_ERROR)
    password = typer.prompt("Password", hide_input=True, confirmation_prompt=True)
    if len(password) < PASSWORD_MIN:
        err_console.print(f"[red]a password of at least {PASSWORD_MIN} characters, please[/red]")
        raise typer.Exit(EXIT_DATA_ERROR)

    async def work(settings: Settings, client: aioredis.Redis, keys: Keys) -> bool:
        added = await Accounts(client, keys).add(op, name.strip(), password, by, time.time())
        await _access(settings, client, keys).grant(op, role, by)
        return added

    added = with_redis(work)
    console.print(f"{op}: {'account made' if added else 'password changed'}; role {role}",
                  highlight=False)


@app.command("list")
def list_command() -> None:
    """The accounts (never their passwords) with their desk roles."""

    async def work(settings: Settings, client: aioredis.Redis, keys: Keys
                   ) -> tuple[str, list[tuple[str, str, str, float, set[Role]]]]:
        access = _access(settings, client, keys)
        rows = [(a.operator, a.name, a.created_by, a.created_at,
                 await access.roles_of(a.operator))
                for a in await Accounts(client, keys).list()]
        return settings.timezone, rows

    zone, rows = with_redis(work)
    table = Table("operator", "name", "roles", "created", "by", title="Console accounts")
    for op, name, by, at, roles in rows:
        created = datetime.fromtimestamp(at, ZoneInfo(zone)).strftime("%Y-%m-%d %H:%M")
        table.add_row(op, name, ", ".join(sorted(roles)) or "—", created, by)
    console.print(table)


@app.command("remove")
def remove_command(op: OperatorArg) -> None:
    """Delete an account and sign it out everywhere at once. Desk roles stay: take them away
    with `/revoke` at the desk (or the API) when the person leaves."""
    _checked(op)

    async def work(settings: Settings, client: aioredis.Redis, keys: Keys) -> bool:
        from handoff.clock import SYSTEM_CLOCK

        sessions = Sessions(client, keys, SYSTEM_CLOCK, _access(settings, client, keys))
        return await Accounts(client, keys).remove(op, sessions)

    if not with_redis(work):
        err_console.print(f"[red]no console account {op!r}[/red]")
        raise typer.Exit(EXIT_DATA_ERROR)
    console.print(f"{op}: account removed, signed out everywhere", highlight=False)


@app.command("link")
def link_command(
    op: OperatorArg,
    name: Annotated[str, typer.Option(help="The name to show (default: the account's).")] = "",
    base: Annotated[str, typer.Option(help="The bot's public address (default: WEB_PUBLIC_URL, "
                                      "the webhook's, or HTTP_HOST:HTTP_PORT).")] = "",
) -> None:
    """Print a one-time login URL (valid 10 minutes; opening it signs the operator in)."""
    from bots.web.console import public_base

    _checked(op)

    async def work(settings: Settings, client: aioredis.Redis, keys: Keys) -> str:
        shown = name
        if not shown:
            found = await Accounts(client, keys).get(op)
            shown = found[0].name if found else op
        path = await login_link(client, keys, op, shown, LINK_TTL)
        return (base.rstrip("/") or public_base(settings)) + path

    url = with_redis(work)
    console.print(f"{url}\n(one use, valid {LINK_TTL / 60:.0f} minutes)", highlight=False,
                  soft_wrap=True)
