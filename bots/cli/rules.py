"""`supportbot rules test FILE "text"`: which automation rules fire for a message and what
they would do; `supportbot rules stats`: how often each rule fired, per UTC day."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Annotated

import redis.asyncio as aioredis
import typer
from rich.table import Table

from bots.cli.common import EXIT_DATA_ERROR, console, settings_or_exit
from bots.cli.flows import print_problems
from bots.cli.inbox import with_redis
from bots.rules.files import load_settings_rules
from bots.rules.loader import RulesError
from bots.rules.matcher import Facts, fired
from bots.rules.model import RuleSet
from bots.settings import Settings
from handoff.keys import Keys
from nlu.data import DataError, load_training_data

app = typer.Typer(help="Automation rules: try a message against a rules file, counts.",
                  no_args_is_help=True)


@app.command("test")
def test_command(
    file: Annotated[Path, typer.Argument(help="The rules file (YAML).")],
    text: Annotated[str, typer.Argument(help="The customer's message.")],
    channel: Annotated[str, typer.Option(help="tg, vk or web.")] = "tg",
    tag: Annotated[list[str] | None, typer.Option(help="A tag of the conversation.")] = None,
    at: Annotated[str | None, typer.Option(help="Time of day HH:MM in TIMEZONE.")] = None,
    language: Annotated[str, typer.Option(help="The customer's app language.")] = "ru",
    customer: Annotated[str, typer.Option(help="The conversation id (for the VIP list).")]
    = "",
) -> None:
    """Show which rules fire for TEXT (the intent from the real NLU) and what they would do."""
    settings = settings_or_exit()
    try:
        data = load_training_data(settings.nlu_data_dir)
    except DataError as exc:
        print_problems(exc.problems)
        raise typer.Exit(EXIT_DATA_ERROR) from None
    try:
        ruleset = load_settings_rules(settings, set(data.intents), file)
    except RulesError as exc:
        print_problems(exc.problems)
        raise typer.Exit(EXIT_DATA_ERROR) from None
    from bots.cli.flows import _classifier

    parse = asyncio.run(_classifier(data, settings).parse(text))
    intent = parse.intent if parse.in_scope else ""
    moment = _moment(ruleset, at)
    facts = Facts(conv=customer or f"{channel}:0", channel=channel, at=moment, text=text,
                  intent=intent, tags=frozenset(tag or ()), language=language)
    console.print(f"intent: {intent or '(not understood)'} ({parse.confidence:.2f}); "
                  f"{channel}, {moment.astimezone(ruleset.timezone):%H:%M} "
                  f"{ruleset.timezone}", highlight=False)
    rules = fired(ruleset, facts)
    if not rules:
        console.print(f"no rule fires ({len(ruleset.message_rules)} message rules)")
        return
    table = Table("rule", "line", "does", "stop")
    for rule in rules:
        table.add_row(rule.name, str(rule.pos.line), "; ".join(rule.do.describe()),
                      "yes" if rule.stop else "")
    console.print(table)


def _moment(ruleset: RuleSet, at: str | None) -> datetime:
    now = datetime.now(ruleset.timezone)
    if not at:
        return now
    try:
        hour, minute = (int(part) for part in at.split(":"))
        return now.replace(hour=hour, minute=minute, second=0, microsecond=0)
    except ValueError:
        raise typer.BadParameter(f"--at {at!r}: write HH:MM") from None


@app.command("stats")
def stats_command(
    days: Annotated[int, typer.Option(min=1, max=400, help="The last N UTC days.")] = 7,
) -> None:
    """How many times each rule fired, per UTC day."""

    async def work(_settings: Settings, client: aioredis.Redis, keys: Keys
                   ) -> dict[str, dict[str, int]]:
        today = datetime.now(UTC).date()
        dates = [str(today - timedelta(days=n)) for n in range(days)]
        async with client.pipeline(transaction=False) as pipe:
            for day in dates:
                pipe.hgetall(keys.rules_day(day))
            found = await pipe.execute()
        return {day: {str(k): int(v) for k, v in counts.items()}
                for day, counts in zip(dates, found, strict=True) if counts}

    counts = with_redis(work)
    if not counts:
        console.print(f"no rule fired in the last {days} days")
        return
    rules = sorted({name for day in counts.values() for name in day})
    table = Table("day", *rules, "total")
    for day in sorted(counts, reverse=True):
        row = counts[day]
        table.add_row(day, *(str(row.get(name, 0)) for name in rules), str(sum(row.values())))
    console.print(table)
