"""bench.nlu_vs_rasa's plumbing, with a stand-in for the Rasa venv's python.

The stand-in gets the same command line as the real one (scripts/rasa_eval.py PROJECT TEXTS
OUT), checks the exported project and answers every text with a canned Rasa parse.
"""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from bench import nlu_vs_rasa
from nlu.data import load_training_data
from nlu.evaluate import holdout_split

SMALL = Path(__file__).parent / "data" / "nlu_small"

STAND_IN = """\
import json, sys
from pathlib import Path
_, script, project, texts, out = sys.argv
assert script.endswith("rasa_eval.py") and (Path(project) / "data" / "nlu.yml").exists()
parse = lambda t: {"intent": {"name": "greet", "confidence": 0.9 if "привет" in t else 0.2},
                   "intent_ranking": [], "entities": []}
results = [{"parse": parse(t), "seconds": 0.02} for t in json.loads(Path(texts).read_text())]
Path(out).write_text(json.dumps({"train_seconds": 60.0, "results": results}))
"""


@pytest.fixture
def fake_venv(tmp_path: Path) -> Path:
    python = tmp_path / "venv" / "bin" / "python"
    python.parent.mkdir(parents=True)
    (tmp_path / "stand_in.py").write_text(STAND_IN, encoding="utf-8")
    python.write_text(f'#!/bin/sh\nexec "{sys.executable}" "{tmp_path / "stand_in.py"}" "$@"\n')
    python.chmod(0o755)
    return tmp_path / "venv"


def test_rasa_answers_are_scored_like_the_embedded_ones(fake_venv: Path) -> None:
    train, test = holdout_split(load_training_data(SMALL))
    report = nlu_vs_rasa.rasa_report(fake_venv / "bin" / "python", train, test,
                                     threshold=0.35, epochs=3)
    # a greeting is "greet" (0.9), anything else out of scope (0.2 < 0.35)
    expected = ["greet" if "привет" in e.text else "out_of_scope" for e in test.examples]
    hits = sum(e.intent == guess for e, guess in zip(test.examples, expected, strict=True))
    truth = [e.intent for e in test.examples]
    assert report.items == len(truth)
    assert report.accuracy == pytest.approx(hits / len(truth))
    assert report.oos_recall == 1.0
    assert (report.train_seconds, report.parse_p50_ms) == (60.0, pytest.approx(20.0))


def test_side_by_side_table(fake_venv: Path, capsys: pytest.CaptureFixture[str]) -> None:
    nlu_vs_rasa.main(["--data", str(SMALL), "--rasa-venv", str(fake_venv), "--epochs", "3"])
    out = " ".join(capsys.readouterr().out.split())  # the title wraps on a narrow terminal
    assert "Rasa 3.6 DIET (3 epochs)" in out
    for row in ("accuracy", "macro-F1", "out-of-scope recall", "training", "parse p50",
                "parse p99"):
        assert row in out
    assert "embedded >= Rasa on accuracy and macro-F1: yes" in out


def test_without_rasa_the_embedded_column_and_how_to_get_rasa(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    nlu_vs_rasa.main(["--data", str(SMALL), "--rasa-venv", str(tmp_path / "none")])
    out = capsys.readouterr().out
    assert "Rasa is not installed" in out and "scripts/rasa-server.sh install" in out
    assert "Rasa DIET" not in out and "accuracy" in out


def test_a_failing_rasa_ends_the_bench_with_its_error(tmp_path: Path) -> None:
    python = tmp_path / "bin" / "python"
    python.parent.mkdir()
    python.write_text("#!/bin/sh\necho 'ModuleNotFoundError: rasa' >&2\nexit 3\n")
    python.chmod(0o755)
    with pytest.raises(SystemExit, match=r"(?s)exit 3\).*ModuleNotFoundError: rasa"):
        nlu_vs_rasa.main(["--data", str(SMALL), "--rasa-venv", str(tmp_path)])
