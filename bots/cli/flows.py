"""`supportbot validate` and `supportbot test`: the trainers' checks of flows and NLU data.

Problems print as `file:line: severity: message`, one per line, so editors and grep can jump to
them. The NLU classifier is imported inside `test` only: it pulls in scikit-learn, which would
slow every other command down.
"""

from __future__ import annotations

import asyncio
import os
import random
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Annotated

import typer
from rich.progress import Progress
from rich.table import Table
from rich.text import Text

from bots.cli.common import EXIT_DATA_ERROR, console, settings_or_exit
from bots.rules.files import rules_problems
from bots.settings import PACKAGE_ROOT, Settings
from flows.engine import FlowEngine
from flows.loader import FlowError, load_flows
from flows.model import FlowSet
from flows.testing import (
    ConversationResult,
    ConversationTest,
    ConversationTestError,
    load_conversation_tests,
    run_conversation,
)
from flows.validate import validate_flows
from nlu.data import DataError, TrainingData, load_training_data
from nlu.types import NLUBackend, Problem
from nlu.validate import check_training_data

CONVERSATIONS_DIR = Path("tests") / "conversations"
#: Every conversation test gets the same seed, so a failure replays with the same text variants.
TEST_SEED = 0

NluOption = Annotated[
    Path | None, typer.Option("--nlu", help="NLU data directory (default: NLU_DATA_DIR).")
]
FlowsOption = Annotated[
    Path | None, typer.Option("--flows", help="Flows directory (default: FLOWS_DIR).")
]


def register(app: typer.Typer) -> None:
    app.command("validate")(validate_command)
    app.command("test")(conversation_tests_command)


def validate_command(nlu: NluOption = None, flows: FlowsOption = None) -> None:
    """Check flows and NLU data together; exit 1 on errors (warnings are allowed)."""
    settings = settings_or_exit()
    problems: list[Problem] = []
    data: TrainingData | None = None
    try:
        data = load_training_data(nlu or settings.nlu_data_dir)
    except DataError as exc:
        problems += exc.problems
    else:
        problems += check_training_data(data)
    flowset: FlowSet | None = None
    try:
        flowset = load_flows(flows or settings.flows_dir)
    except FlowError as exc:
        problems += exc.problems
    else:
        known = set(data.intents) if data is not None else None
        sources = _intent_sources(data) if data is not None else {}
        problems += validate_flows(flowset, known, sources)
    problems += rules_problems(settings, set(data.intents) if data is not None else None)
    print_problems(problems)
    errors = sum(problem.severity == "error" for problem in problems)
    counts = []
    if flowset is not None:
        counts.append(f"{len(flowset)} flows in {len(flowset.files)} files")
    if data is not None:
        counts.append(f"{len(data.intents)} intents, {len(data)} examples")
    summary = f"{errors} errors, {len(problems) - errors} warnings"
    console.print(f"{'; '.join(counts)}: {summary}" if counts else summary, highlight=False)
    if errors:
        raise typer.Exit(EXIT_DATA_ERROR)


def _intent_sources(data: TrainingData) -> dict[str, tuple[str, int]]:
    return {
        name: (examples[0].file, examples[0].line)
        for name, examples in data.intents.items()
        if examples
    }


def print_problems(problems: Iterable[Problem]) -> None:
    for problem in problems:
        style = "red" if problem.severity == "error" else "yellow"
        line = f"{display_path(problem.file)}:{problem.line}: {problem.severity}: {problem.message}"
        # soft_wrap keeps one problem on one line, however narrow the terminal.
        console.print(line, style=style, soft_wrap=True, highlight=False, markup=False)


def display_path(file: str) -> str:
    """A path relative to the current directory when it lies inside it (shorter, clickable)."""
    try:
        return os.path.relpath(file) if Path(file).resolve().is_relative_to(Path.cwd()) else file
    except (OSError, ValueError):
        return file


def conversation_tests_command(
    files: Annotated[
        list[Path] | None,
        typer.Argument(help="Test files or directories (default: tests/conversations)."),
    ] = None,
    nlu: NluOption = None,
    flows: FlowsOption = None,
    verbose: Annotated[
        bool, typer.Option("--verbose", "-v", help="Print every dialogue, not only failures.")
    ] = False,
) -> None:
    """Run conversation tests through the real NLU and the flows; exit 1 when any fails."""
    settings = settings_or_exit()
    try:
        tests = load_conversation_tests(files or [default_conversations_dir()])
        flowset = load_flows(flows or settings.flows_dir)
        data = load_training_data(nlu or settings.nlu_data_dir)
        FlowEngine(flowset)  # refuses broken references before any test runs
    except (ConversationTestError, FlowError, DataError) as exc:
        print_problems(exc.problems)
        raise typer.Exit(EXIT_DATA_ERROR) from None
    if not tests:
        console.print("no conversation tests found", style="red")
        raise typer.Exit(EXIT_DATA_ERROR)
    classifier = _classifier(data, settings)
    results = asyncio.run(_run_all(tests, flowset, settings, classifier))
    _print_results(results, verbose)
    if not all(result.passed for result in results):
        raise typer.Exit(EXIT_DATA_ERROR)


def default_conversations_dir() -> Path:
    here = Path.cwd() / CONVERSATIONS_DIR
    return here if here.is_dir() else PACKAGE_ROOT / CONVERSATIONS_DIR


def _classifier(data: TrainingData, settings: Settings) -> NLUBackend:
    from nlu.cache import load_or_train

    with console.status("Loading the NLU model (training it if the data changed)…"):
        classifier, trained = load_or_train(
            data, cache_dir=settings.model_cache_dir, threshold=settings.nlu_threshold
        )
    console.print(f"NLU model {'trained' if trained else 'loaded from cache'}", highlight=False)
    return classifier


async def _run_all(
    tests: Sequence[ConversationTest], flowset: FlowSet, settings: Settings, nlu: NLUBackend
) -> list[ConversationResult]:
    def factory() -> FlowEngine:
        return FlowEngine(
            flowset,
            language=settings.language,
            misses_before_handoff=settings.misses_before_handoff,
            rng=random.Random(TEST_SEED),
        )

    results = []
    with Progress(console=console, transient=True) as progress:
        task = progress.add_task("Conversation tests", total=len(tests))
        for case in tests:
            results.append(await run_conversation(case, factory, nlu))
            progress.advance(task)
    return results


def _print_results(results: Sequence[ConversationResult], verbose: bool) -> None:
    locations = [f"{display_path(result.test.file)}:{result.test.line}" for result in results]
    table = Table("test", show_lines=False)
    # The location is what people copy into an editor: it never wraps or shrinks.
    table.add_column("where", no_wrap=True, min_width=max(map(len, locations)))
    table.add_column("result", no_wrap=True)
    table.add_column("first mismatch")
    for result, where in zip(results, locations, strict=True):
        verdict = Text("pass", "green") if result.passed else Text("FAIL", "red")
        # Text cells: titles like "[Москва]" in a mismatch must not be read as rich markup.
        table.add_row(Text(result.test.name), where, verdict, Text(str(result.mismatch or "")))
    console.print(table)
    for result in results:
        if verbose or not result.passed:
            console.print(result.report(), highlight=False, markup=False, soft_wrap=True)
    failed = sum(not result.passed for result in results)
    style = "red" if failed else "green"
    console.print(f"{len(results) - failed} passed, {failed} failed", style=style)
