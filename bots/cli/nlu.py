"""`supportbot nlu train | parse | evaluate | export-rasa`: the trainers' NLU commands.

Data errors print as `file:line: severity: message` lines on stderr with exit code 1, never a
traceback. `evaluate --json` prints exactly one JSON object on stdout (progress is not shown).
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated

import typer
from rich.progress import BarColumn, Progress, TaskID, TextColumn, TimeElapsedColumn
from rich.table import Table

from bots.cli.common import EXIT_DATA_ERROR, console, err_console, settings_or_exit
from bots.settings import Settings
from nlu.cache import cache_path, load_or_train
from nlu.data import DataError, TrainingData, load_training_data
from nlu.embedded import EmbeddedClassifier
from nlu.embedded import Progress as ProgressCallback
from nlu.evaluate import EvaluationReport, cross_validate, train_test
from nlu.export import DEFAULT_EPOCHS, ExportError, export_rasa_project
from nlu.types import ParseResult

app = typer.Typer(
    help="Train, try and evaluate the embedded intent classifier (data: NLU_DATA_DIR).",
    no_args_is_help=True,
)

DataOption = Annotated[
    Path | None,
    typer.Option("--data", help="Rasa NLU YAML file or directory (default: NLU_DATA_DIR)."),
]
ThresholdOption = Annotated[
    float | None,
    typer.Option(min=0.0, max=1.0, help="Out-of-scope threshold (default: NLU_THRESHOLD)."),
]


@app.command()
def train(
    data: DataOption = None,
    force: Annotated[bool, typer.Option(help="Retrain even if a cached model exists.")] = False,
) -> None:
    """Train the model (or confirm the cached one is current) and show where it is stored."""
    settings = settings_or_exit()
    training = _load(data or settings.nlu_data_dir)
    path = cache_path(settings.model_cache_dir, training.fingerprint())
    if force:
        path.unlink(missing_ok=True)
    start = time.perf_counter()
    with _progress() as callback:
        _, trained = load_or_train(
            training, settings.model_cache_dir, settings.nlu_threshold, progress=callback
        )
    seconds = time.perf_counter() - start
    console.print(
        f"{'Trained' if trained else 'Loaded the cached model for'} {len(training.intents)} "
        f"intents, {len(training)} examples in {seconds:.2f} s",
        highlight=False,
    )
    console.print(f"model: {path}", highlight=False, soft_wrap=True)


@app.command()
def parse(
    text: Annotated[str, typer.Argument(help="A customer message.")],
    data: DataOption = None,
    threshold: ThresholdOption = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the result as JSON.")] = False,
) -> None:
    """Classify one message: intent, confidence, top intents and entities."""
    settings = settings_or_exit()
    classifier = _classifier(settings, data, threshold, quiet=as_json)
    result = classifier.parse_sync(text)
    if as_json:
        typer.echo(json.dumps(_result_dict(result), ensure_ascii=False))
        return
    _print_result(result)


@app.command()
def evaluate(
    train_path: Annotated[
        Path | None, typer.Option("--train", help="Train on this file or directory.")
    ] = None,
    test_path: Annotated[
        Path | None, typer.Option("--test", help="Test on this file (else: cross-validate).")
    ] = None,
    folds: Annotated[int, typer.Option(min=2, max=20, help="Cross-validation folds.")] = 5,
    threshold: ThresholdOption = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON object.")] = False,
) -> None:
    """Accuracy, macro-F1, per-intent scores, out-of-scope recall and timings."""
    settings = settings_or_exit()
    if train_path is not None and test_path is None:
        err_console.print("[red]--train needs --test[/red] (or leave both out to cross-validate)")
        raise typer.Exit(EXIT_DATA_ERROR)
    cutoff = settings.nlu_threshold if threshold is None else threshold
    training = _load(train_path or settings.nlu_data_dir)
    testing = _load(test_path) if test_path is not None else None
    with _progress(enabled=not as_json) as callback:
        if testing is not None:
            report = train_test(training, testing, threshold=cutoff, progress=callback)
        else:
            report = cross_validate(training, threshold=cutoff, folds=folds, progress=callback)
    if as_json:
        typer.echo(json.dumps(report.to_dict(), ensure_ascii=False))
        return
    _print_report(report)


@app.command("export-rasa")
def export_rasa(
    directory: Annotated[Path, typer.Argument(help="Where to write the Rasa project.")],
    data: DataOption = None,
    epochs: Annotated[int, typer.Option(min=1, help="DIET training epochs.")] = DEFAULT_EPOCHS,
    force: Annotated[bool, typer.Option(help="Overwrite an exported project.")] = False,
) -> None:
    """Write a Rasa 3 project (config.yml with DIET, domain.yml, data/nlu.yml) from the data."""
    settings = settings_or_exit()
    training = _load(data or settings.nlu_data_dir)
    try:
        project = export_rasa_project(
            training, directory, epochs=epochs, language=settings.language, overwrite=force
        )
    except ExportError as exc:
        err_console.print(f"[red]{exc}[/red]", highlight=False)
        raise typer.Exit(EXIT_DATA_ERROR) from None
    console.print(
        f"Exported {project.intents} intents, {project.examples} examples to {directory}",
        highlight=False, soft_wrap=True,
    )
    for file in project.files:
        console.print(f"  {file}", highlight=False, soft_wrap=True)


def _load(path: Path) -> TrainingData:
    with _data_errors_exit():
        return load_training_data(path)


def _classifier(
    settings: Settings, data: Path | None, threshold: float | None, *, quiet: bool
) -> EmbeddedClassifier:
    training = _load(data or settings.nlu_data_dir)
    cutoff = settings.nlu_threshold if threshold is None else threshold
    with _progress(enabled=not quiet) as callback:
        classifier, _ = load_or_train(training, settings.model_cache_dir, cutoff, callback)
    return classifier


@contextmanager
def _data_errors_exit() -> Iterator[None]:
    """Bad data (unreadable files, a regex that does not compile) ends as file:line lines."""
    try:
        yield
    except DataError as exc:
        for problem in exc.problems:
            err_console.print(str(problem), highlight=False, markup=False, soft_wrap=True)
        raise typer.Exit(EXIT_DATA_ERROR) from None


@contextmanager
def _progress(enabled: bool = True) -> Iterator[ProgressCallback | None]:
    """A progress bar on stderr (stdout stays clean for pipes), fed by the nlu callbacks."""
    if not enabled:
        with _data_errors_exit():
            yield None
        return
    columns = (TextColumn("{task.description}"), BarColumn(), TimeElapsedColumn())
    tasks: dict[str, TaskID] = {}
    # the bar is left (and cleared) before a data error prints its lines
    with _data_errors_exit(), Progress(*columns, console=err_console, transient=True) as bar:

        def update(what: str, done: int, total: int) -> None:
            if what not in tasks:
                tasks[what] = bar.add_task(what, total=total)
            bar.update(tasks[what], completed=done, total=total)

        yield update


def _result_dict(result: ParseResult) -> dict[str, object]:
    return {
        "text": result.text,
        "intent": result.intent,
        "confidence": round(result.confidence, 4),
        "ranking": [
            {"intent": s.name, "confidence": round(s.confidence, 4)} for s in result.ranking
        ],
        "entities": [
            {"entity": e.entity, "value": e.value, "start": e.start, "end": e.end}
            for e in result.entities
        ],
    }


def _print_result(result: ParseResult) -> None:
    colour = "green" if result.in_scope else "yellow"
    console.print(
        f"intent: [{colour}]{result.intent}[/{colour}]  confidence: {result.confidence:.3f}"
    )
    ranking = Table("intent", "confidence", title="ranking")
    for score in result.ranking:
        ranking.add_row(score.name, f"{score.confidence:.3f}")
    console.print(ranking)
    if result.entities:
        entities = Table("entity", "value", "text", title="entities")
        for entity in result.entities:
            entities.add_row(entity.entity, entity.value, result.text[entity.start : entity.end])
        console.print(entities)


def _print_report(report: EvaluationReport) -> None:
    summary = Table(title=f"{report.method}, threshold {report.threshold:.2f}", show_header=False)
    summary.add_row("items", str(report.items))
    summary.add_row("accuracy", f"{report.accuracy:.3f}")
    summary.add_row("macro-F1", f"{report.macro_f1:.3f}")
    if report.in_scope_accuracy is not None:
        summary.add_row("in-scope accuracy", f"{report.in_scope_accuracy:.3f}")
    if report.oos_recall is not None:
        summary.add_row("out-of-scope recall", f"{report.oos_recall:.3f}")
    summary.add_row("train time", f"{report.train_seconds:.2f} s")
    summary.add_row("parse p50 / p99", f"{report.parse_p50_ms:.3f} / {report.parse_p99_ms:.3f} ms")
    console.print(summary)
    intents = Table("intent", "precision", "recall", "F1", "support", title="per intent")
    for m in sorted(report.per_intent, key=lambda m: m.f1):
        intents.add_row(
            m.intent, f"{m.precision:.2f}", f"{m.recall:.2f}", f"{m.f1:.2f}", str(m.support)
        )
    console.print(intents)
    if report.confusions:
        confusions = Table("true", "predicted", "count", "example", title="worst confusions")
        for c in report.confusions:
            confusions.add_row(c.true, c.predicted, str(c.count), c.example)
        console.print(confusions)
