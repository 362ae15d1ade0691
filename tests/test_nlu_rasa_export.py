"""`supportbot nlu export-rasa`: a Rasa 3 project that carries the data over unchanged."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

from bots.cli.nlu import app
from bots.settings import DEFAULT_NLU_DIR
from nlu.data import Example, load_training_data
from nlu.export import ExportError, annotate, export_rasa_project
from nlu.types import Entity


def test_the_demo_data_round_trips(tmp_path: Path) -> None:
    data = load_training_data(DEFAULT_NLU_DIR)
    project = export_rasa_project(data, tmp_path, epochs=42)
    assert (project.intents, project.examples) == (len(data.intents), len(data))
    exported = load_training_data(tmp_path / "data" / "nlu.yml")
    # same examples, annotations, synonyms, regexes and lookups: the same fingerprint
    assert exported.fingerprint() == data.fingerprint()
    assert sum(len(e.entities) for e in exported.examples) > 0
    config = yaml.safe_load((tmp_path / "config.yml").read_text(encoding="utf-8"))
    diet = [c for c in config["pipeline"] if c["name"] == "DIETClassifier"]
    assert diet == [{"name": "DIETClassifier", "epochs": 42, "constrain_similarities": True,
                     "random_seed": 7}]
    assert config["language"] == "ru"
    domain = yaml.safe_load((tmp_path / "domain.yml").read_text(encoding="utf-8"))
    assert domain["intents"] == list(data.intents)
    assert {"city", "order_number"} <= set(domain["entities"])


def test_annotations_are_written_back() -> None:
    example = Example("в мск и Казань", "delivery_cost",
                      entities=(Entity("city", "Казань", 8, 14), Entity("city", "Москва", 2, 5)))
    assert annotate(example) == 'в [мск]{"entity": "city", "value": "Москва"} и [Казань](city)'


def test_an_existing_project_is_kept_unless_forced(tmp_path: Path) -> None:
    data = load_training_data(DEFAULT_NLU_DIR)
    (tmp_path / "config.yml").write_text("mine\n", encoding="utf-8")
    with pytest.raises(ExportError, match=r"config\.yml"):
        export_rasa_project(data, tmp_path)
    assert (tmp_path / "config.yml").read_text(encoding="utf-8") == "mine\n"
    export_rasa_project(data, tmp_path, overwrite=True)
    assert "DIETClassifier" in (tmp_path / "config.yml").read_text(encoding="utf-8")


def test_cli(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.chdir(tmp_path)  # no stray .env
    monkeypatch.setenv("CACHE_DIR", str(tmp_path / "cache"))
    runner = CliRunner()
    result = runner.invoke(app, ["export-rasa", "rasa", "--epochs", "5"])
    assert result.exit_code == 0, result.output
    assert "Exported 33 intents" in result.stdout
    assert "epochs: 5" in (tmp_path / "rasa" / "config.yml").read_text(encoding="utf-8")
    again = runner.invoke(app, ["export-rasa", "rasa"])
    assert again.exit_code == 1
    assert "--force" in again.output
