"""`supportbot stats`: the trainers' numbers over a period, as tables or CSV.

The same report as `GET /api/v1/stats` (bots/trainer/stats.py): per-intent volume, fallback
and deflection rates, handoff reasons, top unrecognized themes. Days are UTC.
"""

from __future__ import annotations

import csv
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated

import redis.asyncio as aioredis
import typer
from rich.table import Table

from bots.cli.common import EXIT_DATA_ERROR, console, err_console
from bots.cli.inbox import with_redis
from bots.settings import Settings
from bots.trainer.stats import TrainerStats, csv_rows
from handoff.keys import Keys
from handoff.stats import MAX_DAYS, PeriodError, StatsOut, period_of

DateOption = Annotated[
    datetime | None, typer.Option(formats=["%Y-%m-%d"], help="UTC day, YYYY-MM-DD.")
]


def stats_command(
    days: Annotated[int | None, typer.Option(min=1, max=MAX_DAYS,
                                             help="The last N days (default 7).")] = None,
    since: DateOption = None,
    until: DateOption = None,
    csv_path: Annotated[Path | None, typer.Option(
        "--csv", help="Write the report as CSV to this file ('-': stdout).")] = None,
) -> None:
    """Per-intent volume, fallback and deflection rates, handoff reasons, unrecognized themes."""
    today = datetime.now(UTC).date()
    try:
        period = period_of(since.date() if since else None, until.date() if until else None,
                           days, today)
    except PeriodError as exc:
        err_console.print(f"[red]{exc}[/red]")
        raise typer.Exit(EXIT_DATA_ERROR) from None

    async def work(_settings: Settings, client: aioredis.Redis, keys: Keys) -> StatsOut:
        return await TrainerStats(client, keys)(period)

    report = with_redis(work)
    if csv_path is not None:
        _write_csv(report, csv_path)
        return
    _print(report)


def _write_csv(report: StatsOut, path: Path) -> None:
    if str(path) == "-":
        csv.writer(sys.stdout).writerows(csv_rows(report))
        return
    with path.open("w", encoding="utf-8", newline="") as file:
        csv.writer(file).writerows(csv_rows(report))
    console.print(f"written to {path}", highlight=False)


def _print(report: StatsOut) -> None:
    summary = Table(title=f"bot, {report.since} – {report.until} (UTC)", show_header=False)
    summary.add_row("bot turns", str(report.turns))
    summary.add_row("fallback rate", _share(report.fallback_rate, report.fallbacks, "turns"))
    summary.add_row("conversations", str(report.conversations))
    summary.add_row("deflection rate", _share(
        report.deflection_rate, report.conversations - report.handed_off, "without a human"))
    summary.add_row("handed off", str(report.handed_off))
    console.print(summary)
    intents = Table("intent", "turns", "share", title="per-intent volume")
    for item in report.intents:
        intents.add_row(item.intent, str(item.turns), _percent(item.turns / report.turns))
    console.print(intents)
    reasons = Table("reason", "handoffs", title="handoff reasons")
    for reason in report.handoff_reasons:
        reasons.add_row(reason.reason, str(reason.handoffs))
    console.print(reasons)
    themes = Table("messages", "convs", "example", "NLU guessed", title="top unrecognized themes")
    for theme in report.unrecognized_themes:
        themes.add_row(str(theme.messages), str(theme.conversations), theme.text,
                       theme.top_guess or "—")
    console.print(themes)


def _share(rate: float | None, count: int, what: str) -> str:
    return "—" if rate is None else f"{_percent(rate)} ({count} {what})"


def _percent(value: float) -> str:
    return f"{value * 100:.1f} %"
