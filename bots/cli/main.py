"""The `supportbot` command."""

from __future__ import annotations

import asyncio
import errno
from enum import Enum
from typing import Annotated

import typer
from rich.markup import escape

from bots.cli import audit as audit_cli
from bots.cli import console as console_cli
from bots.cli import flows as flows_cli
from bots.cli import inbox as inbox_cli
from bots.cli import nlu as nlu_cli
from bots.cli import notices as notices_cli
from bots.cli import report as report_cli
from bots.cli import rules as rules_cli
from bots.cli import stats as stats_cli
from bots.cli import tokens as tokens_cli
from bots.cli.common import (
    EXIT_CONFIG_ERROR,
    EXIT_DATA_ERROR,
    EXIT_ENVIRONMENT,
    console,
    err_console,
    settings_or_exit,
    setup_logging,
)
from bots.cli.lifecycle import stop_event
from bots.rules.loader import RulesError
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
app.add_typer(report_cli.app, name="report")
app.add_typer(audit_cli.letters_app, name="deadletters")
app.add_typer(audit_cli.records_app, name="records")
app.add_typer(tokens_cli.app, name="tokens")
app.add_typer(console_cli.app, name="console")
app.add_typer(notices_cli.app, name="notices")
app.add_typer(rules_cli.app, name="rules")
app.command("journal")(audit_cli.journal_command)
app.command("stats")(stats_cli.stats_command)
flows_cli.register(app)


class Role(str, Enum):
    all = "all"
    ingress = "ingress"
    worker = "worker"
    sender = "sender"


@app.command()
def run(
    role: Annotated[Role, typer.Option(help="Run only one part (for scaling out).")] = Role.all,
) -> None:
    """Run the configured channels; with no tokens, the local demo in the browser."""
    settings = settings_or_exit()
    setup_logging(settings.log_level, settings)
    if settings.telegram_bot_token is None and not settings.vk_enabled:
        from bots.cli.demo import run_demo

        _run_guarded(run_demo(settings, console), settings)
        return
    roles = {"ingress", "worker", "sender"} if role is Role.all else {role.value}
    _run_guarded(_serve(settings, roles), settings)


@app.command()
def shell() -> None:
    """Chat with the bot in the terminal (shows intent, confidence and flow steps)."""
    settings = settings_or_exit()
    setup_logging("WARNING", settings)
    _run_guarded(_shell(settings), settings)


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
    stop = stop_event(runtime)
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


def _run_guarded(coro: object, settings: Settings | None = None) -> None:
    """Run, turning data and set-up errors into readable lines instead of tracebacks:
    exit 1 for data and the environment (a port in use), 2 for configuration (a bad token)."""
    try:
        asyncio.run(coro)  # type: ignore[arg-type]
    except (DataError, FlowError, RulesError) as exc:
        for problem in exc.problems:
            err_console.print(str(problem), highlight=False)
        raise typer.Exit(EXIT_DATA_ERROR) from None
    except EmbeddedRedisError as exc:
        err_console.print(f"[red]redis:[/red] {exc}")
        raise typer.Exit(EXIT_DATA_ERROR) from None
    except KeyboardInterrupt:
        pass
    except Exception as exc:
        explained = startup_error(exc, settings)
        if explained is None:
            raise
        line, code = explained
        if settings is not None:
            from bots.redact import Redactor, settings_secrets

            line = Redactor(settings_secrets(settings))(line)
        err_console.print(f"[red]error:[/red] {escape(line)}", highlight=False, markup=True,
                          soft_wrap=True)  # escaped: "[Errno 98]" is no markup
        raise typer.Exit(code) from None


def startup_error(exc: BaseException, settings: Settings | None) -> tuple[str, int] | None:
    """One line saying what to fix, and the exit code; None for an error we cannot explain."""
    from aiogram.exceptions import TelegramUnauthorizedError
    from redis.exceptions import RedisError

    from bots.health import FatalRoleError
    from bots.redis_connect import RedisUrlError, rejected_credentials

    if isinstance(exc, RedisUrlError):
        return str(exc), EXIT_CONFIG_ERROR
    if isinstance(exc, RedisError) and rejected_credentials(exc):
        if settings is not None and settings.redis_url and "@" not in settings.redis_url:
            return ("Redis requires a password: put it into REDIS_URL "
                    "(redis://:PASSWORD@host:port/db)"), EXIT_CONFIG_ERROR
        return (f"Redis rejected the password (or user) in REDIS_URL "
                f"({str(exc).rstrip('.')}): fix REDIS_URL"), EXIT_CONFIG_ERROR
    if isinstance(exc, TelegramUnauthorizedError):
        return (f"Telegram rejected TELEGRAM_BOT_TOKEN ({exc.message}): check the token "
                "@BotFather gave you"), EXIT_CONFIG_ERROR
    if isinstance(exc, FatalRoleError):
        return str(exc), EXIT_CONFIG_ERROR
    if isinstance(exc, OSError):
        if exc.errno == errno.EADDRINUSE and settings is not None:
            return (f"HTTP_PORT {settings.http_port} is in use: {exc}; stop "
                    f"what listens on {settings.http_host}:{settings.http_port} or set "
                    "another HTTP_PORT"), EXIT_ENVIRONMENT
        return str(exc), EXIT_ENVIRONMENT
    return None


def main() -> None:
    app()
