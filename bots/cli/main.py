"""The `supportbot` command."""

from __future__ import annotations

import asyncio
import contextlib
import signal
from enum import Enum
from typing import Annotated

import typer

from bots.cli import flows as flows_cli
from bots.cli import inbox as inbox_cli
from bots.cli import nlu as nlu_cli
from bots.cli import stats as stats_cli
from bots.cli.common import EXIT_DATA_ERROR, console, err_console, settings_or_exit, setup_logging
from bots.settings import Settings
from flows.loader import FlowError
from handoff.embedded_redis import EmbeddedRedisError
from nlu.data import DataError

app = typer.Typer(
    help="supportbot: a chatbot-first support bot for Telegram and VK with a fast human handoff.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)
app.add_typer(nlu_cli.app, name="nlu")
app.add_typer(inbox_cli.app, name="inbox")
app.command("stats")(stats_cli.stats_command)
flows_cli.register(app)


class Role(str, Enum):
    all = "all"
    ingress = "ingress"
    worker = "worker"
    sender = "sender"


NO_TOKEN_BANNER = """[bold]No TELEGRAM_BOT_TOKEN set: starting the local demo.[/bold]
You are chatting with the demo shop bot through the real runtime (Redis stream, worker, flows,
outbox). To connect Telegram: create a bot with @BotFather, put TELEGRAM_BOT_TOKEN=... into .env
(see README.md) and run this command again."""


@app.command()
def run(
    role: Annotated[Role, typer.Option(help="Run only one part (for scaling out).")] = Role.all,
) -> None:
    """Run the configured channels; with no tokens, the local demo shell."""
    settings = settings_or_exit()
    setup_logging(settings.log_level)
    if settings.telegram_bot_token is None and not settings.vk_enabled:
        console.print(NO_TOKEN_BANNER)
        _run_guarded(_shell(settings))
        return
    roles = {"ingress", "worker", "sender"} if role is Role.all else {role.value}
    _run_guarded(_serve(settings, roles))


@app.command()
def shell() -> None:
    """Chat with the bot in the terminal (shows intent, confidence and flow steps)."""
    settings = settings_or_exit()
    setup_logging("WARNING")
    _run_guarded(_shell(settings))


async def _shell(settings: Settings) -> None:
    from bots.runtime import Runtime
    from bots.shell import run_shell

    runtime = await Runtime.open(settings, progress=lambda msg: console.print(f"[dim]{msg}[/dim]"))
    try:
        await run_shell(runtime, console)
    finally:
        await runtime.close()


async def _serve(settings: Settings, roles: set[str]) -> None:
    from bots.runtime import Runtime

    runtime = await Runtime.open(settings, progress=lambda msg: console.print(f"[dim]{msg}[/dim]"))
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError):
            loop.add_signal_handler(sig, stop.set)
    with contextlib.suppress(NotImplementedError):  # SIGHUP: reload flows and NLU everywhere
        loop.add_signal_handler(signal.SIGHUP, runtime.request_reload_soon, "SIGHUP")
    try:
        await runtime.run(stop, roles)
    finally:
        await runtime.close()


@app.command()
def reload() -> None:
    """Ask every running bot process to re-read flows and NLU data (like /reload, SIGHUP)."""
    from bots.trainer.reload import request_reload

    version = inbox_cli.with_redis(
        lambda _settings, client, keys: request_reload(client, keys, by="cli"))
    console.print(f"reload #{version} requested; the outcome is in the bot's log")


def _run_guarded(coro: object) -> None:
    """Run, turning data and set-up errors into readable lines instead of tracebacks."""
    try:
        asyncio.run(coro)  # type: ignore[arg-type]
    except (DataError, FlowError) as exc:
        for problem in exc.problems:
            err_console.print(str(problem), highlight=False)
        raise typer.Exit(EXIT_DATA_ERROR) from None
    except EmbeddedRedisError as exc:
        err_console.print(f"[red]redis:[/red] {exc}")
        raise typer.Exit(EXIT_DATA_ERROR) from None
    except KeyboardInterrupt:
        pass


def main() -> None:
    app()
