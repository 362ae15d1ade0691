"""`supportbot nlu ...` through typer's CliRunner, on the small fixture data."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from bots.cli.nlu import app

SMALL = Path(__file__).parent / "data" / "nlu_small"


@pytest.fixture
def runner(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> CliRunner:
    monkeypatch.chdir(tmp_path)  # no stray .env
    monkeypatch.setenv("NLU_DATA_DIR", str(SMALL))
    monkeypatch.setenv("CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.setenv("NLU_THRESHOLD", "0.35")
    return CliRunner()


def test_evaluate_json_is_one_object_on_stdout(runner: CliRunner) -> None:
    result = runner.invoke(app, ["evaluate", "--json", "--folds", "3"])
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert report["method"] == "3-fold cross-validation"
    assert report["items"] == 50
    assert 0.0 <= report["accuracy"] <= 1.0
    assert {"macro_f1", "oos_recall", "in_scope_accuracy", "parse_p99_ms"} <= set(report)
    assert {m["intent"] for m in report["per_intent"]} >= {"order_status", "out_of_scope"}


def test_evaluate_train_test(runner: CliRunner, tmp_path: Path) -> None:
    test = tmp_path / "test.yml"
    test.write_text(
        'version: "3.1"\nnlu:\n- intent: order_status\n  examples: |\n    - где же мой заказ\n'
        "- intent: out_of_scope\n  examples: |\n    - какая сегодня погода\n",
        encoding="utf-8",
    )
    result = runner.invoke(app, ["evaluate", "--train", str(SMALL), "--test", str(test), "--json"])
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert report["method"] == "train/test"
    assert (report["items"], report["accuracy"], report["oos_recall"]) == (2, 1.0, 1.0)


def test_evaluate_for_humans(runner: CliRunner) -> None:
    result = runner.invoke(app, ["evaluate", "--folds", "2"])
    assert result.exit_code == 0, result.output
    for heading in ("2-fold cross-validation", "macro-F1", "per intent", "parse p50 / p99"):
        assert heading in result.stdout


def test_train_then_cached(runner: CliRunner, tmp_path: Path) -> None:
    first = runner.invoke(app, ["train"])
    assert first.exit_code == 0, first.output
    assert "Trained 6 intents, 50 examples" in first.stdout
    assert str(tmp_path / "cache" / "models" / "embedded-") in first.stdout
    second = runner.invoke(app, ["train"])
    assert "Loaded the cached model for 6 intents" in second.stdout
    forced = runner.invoke(app, ["train", "--force"])
    assert "Trained" in forced.stdout


def test_parse(runner: CliRunner) -> None:
    result = runner.invoke(app, ["parse", "gde moi zakaz 12345678"])
    assert result.exit_code == 0, result.output
    assert "intent: order_status" in result.stdout
    assert "ranking" in result.stdout and "order_id" in result.stdout
    parsed = json.loads(runner.invoke(app, ["parse", "--json", "какая погода"]).stdout)
    assert parsed["intent"] == "out_of_scope"
    assert len(parsed["ranking"]) == 5


def test_parse_shows_the_entities(runner: CliRunner) -> None:
    text = "где заказ 12345678, доставка в мск"
    parsed = json.loads(runner.invoke(app, ["parse", "--json", text]).stdout)
    assert parsed["entities"] == [
        {"entity": "order_id", "value": "12345678", "start": 10, "end": 18},
        {"entity": "city", "value": "Москва", "start": 31, "end": 34},  # a synonym's value
    ]
    table = runner.invoke(app, ["parse", text])
    assert table.exit_code == 0, table.output
    assert "entities" in table.stdout
    for cells in (("order_id", "12345678"), ("city", "Москва", "мск")):
        assert any(all(cell in line for cell in cells) for line in table.stdout.splitlines())


def test_data_errors_are_file_line_messages(runner: CliRunner, tmp_path: Path) -> None:
    broken = tmp_path / "broken.yml"
    broken.write_text("nlu:\n- intent: a\n  examples: |\n    no dash\n", encoding="utf-8")
    for command in (["train", "--data", str(broken)], ["evaluate", "--test", str(broken)]):
        result = runner.invoke(app, command)
        assert result.exit_code == 1
        assert f"{broken}:4: error: an example must start with `- `" in result.stderr
        assert "Traceback" not in result.output
        assert result.stdout == ""


def test_bad_regex_stops_training_with_its_location(runner: CliRunner, tmp_path: Path) -> None:
    data = tmp_path / "data.yml"
    data.write_text(
        "nlu:\n- intent: a\n  examples: |\n    - x\n- intent: b\n  examples: |\n    - y\n"
        "- regex: id\n  examples: |\n    - [0-9\n",
        encoding="utf-8",
    )
    commands = [
        ["train", "--data", str(data)],
        ["parse", "--json", "x", "--data", str(data)],
        ["evaluate", "--json", "--train", str(data), "--test", str(data)],
    ]
    for command in commands:
        result = runner.invoke(app, command)
        assert result.exit_code == 1, command
        assert f"{data}:10: error: bad regex 'id'" in result.stderr
        assert "Traceback" not in result.output
        assert result.stdout == ""


def test_train_without_test_is_refused(runner: CliRunner) -> None:
    result = runner.invoke(app, ["evaluate", "--train", str(SMALL)])
    assert result.exit_code == 1
    assert "--train needs --test" in result.stderr
