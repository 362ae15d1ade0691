"""`supportbot validate` and `supportbot test` through typer's CliRunner."""

from __future__ import annotations

import re
import textwrap
from pathlib import Path

import pytest
import typer
from typer.testing import CliRunner

from bots.cli.flows import register

SETTINGS_ENV = ("NLU_DATA_DIR", "FLOWS_DIR", "LANGUAGE", "MISSES_BEFORE_HANDOFF", "NLU_THRESHOLD")


@pytest.fixture
def cli(monkeypatch: pytest.MonkeyPatch, tmp_path: Path, model_cache: Path) -> CliRunner:
    """A runner in an empty directory (no .env, no tests/conversations) with default settings."""
    for name in SETTINGS_ENV:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("CACHE_DIR", str(model_cache.parent / "cli-cache"))
    monkeypatch.chdir(tmp_path)
    return CliRunner()


def invoke(runner: CliRunner, *args: str) -> tuple[int, str]:
    app = typer.Typer()
    register(app)
    result = runner.invoke(app, list(args), catch_exceptions=False)
    return result.exit_code, result.output


def test_validate_accepts_the_shipped_data(cli: CliRunner) -> None:
    code, output = invoke(cli, "validate")
    assert code == 0, output
    assert re.search(r"\d+ flows in \d+ files; \d+ intents, \d+ examples: 0 errors", output)


def test_validate_prints_problems_at_file_and_line_and_fails(
    cli: CliRunner, tmp_path: Path
) -> None:
    flows = tmp_path / "flows"
    flows.mkdir()
    (flows / "a.yml").write_text(
        textwrap.dedent(
            """\
            flows:
              start:
                intents: [no_such_intent]
                steps: [{goto: nowhere}]
            """
        )
    )
    code, output = invoke(cli, "validate", "--flows", "flows")
    assert code == 1
    lines = output.splitlines()
    assert "flows/a.yml:3: error: intent 'no_such_intent' has no training data" in lines
    assert "flows/a.yml:4: error: no step 'nowhere' in flow 'start'" in lines
    assert "flows/a.yml:0: error: the reserved flow 'fallback' is missing" in lines
    assert re.search(r"1 flows in 1 files; .*: \d+ errors, \d+ warnings", output)


def test_validate_reports_unreadable_data_of_both_kinds(cli: CliRunner, tmp_path: Path) -> None:
    (tmp_path / "nlu").mkdir()
    (tmp_path / "nlu" / "x.yml").write_text("nlu:\n  - intent: [\n")
    (tmp_path / "flows").mkdir()
    (tmp_path / "flows" / "x.yml").write_text("flows: 3\n")
    code, output = invoke(cli, "validate", "--nlu", "nlu", "--flows", "flows")
    assert code == 1
    assert re.search(r"^nlu/x\.yml:\d+: error: ", output, re.MULTILINE)
    assert "flows/x.yml:1: error: flows must be a mapping" in output.splitlines()


def test_test_runs_the_shipped_conversations_by_default(cli: CliRunner) -> None:
    code, output = invoke(cli, "test")
    assert code == 0, output
    assert re.search(r"\n(\d+) passed, 0 failed", output)


def test_test_shows_the_first_mismatch_and_fails(cli: CliRunner, tmp_path: Path) -> None:
    (tmp_path / "conv.yml").write_text(
        textwrap.dedent(
            """\
            tests:
              - name: greeting passes
                steps:
                  - user: /start
                    bot: Здравствуйте
              - name: operator fails
                steps:
                  - user: позовите оператора
                    handoff: complaint
            """
        )
    )
    code, output = invoke(cli, "test", "conv.yml", "-v")
    assert code == 1
    assert "1 passed, 1 failed" in output
    assert "handoff: expected 'complaint', got 'customer_request'" in output
    assert "conv.yml:2: greeting passes" in output  # -v prints passing dialogues too


def test_test_reports_broken_test_files(cli: CliRunner, tmp_path: Path) -> None:
    (tmp_path / "conv.yml").write_text("tests:\n  - name: x\n    steps: [{bot: y}]\n")
    code, output = invoke(cli, "test", "conv.yml")
    assert code == 1
    assert "conv.yml:3: error: a test step needs exactly one of user, click" in output
