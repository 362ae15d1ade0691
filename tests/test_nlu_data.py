"""Loading Rasa NLU YAML: line numbers, annotations, entity tables, and errors at file:line."""

from __future__ import annotations

from pathlib import Path

import pytest

from nlu.data import DataError, Example, TrainingData, load_training_data
from nlu.types import Entity
from nlu.validate import check_training_data

SMALL = Path(__file__).parent / "data" / "nlu_small"


def write(directory: Path, name: str, text: str) -> Path:
    path = directory / name
    path.write_text(text, encoding="utf-8")
    return path


def test_examples_keep_their_file_and_line() -> None:
    data = load_training_data(SMALL)
    status = data.intents["order_status"]
    assert status[0] == Example("где мой заказ", "order_status", str(SMALL / "intents.yml"), 6)
    assert status[1].line == 7
    # a blank line between intents shifts nothing
    assert data.intents["delivery_cost"][0].line == 19
    assert data.intents["delivery_cost"][0].text == "сколько стоит доставка"


def test_directory_means_its_yaml_files_in_order() -> None:
    data = load_training_data(SMALL)
    assert data.sources == (str(SMALL / "entities.yml"), str(SMALL / "intents.yml"))
    assert {e.name for e in data.lookups} == {"city"}
    assert [(e.name, e.value, e.line) for e in data.regexes] == [("order_id", r"\b\d{8}\b", 14)]


def test_annotations_are_stripped_and_remembered() -> None:
    data = load_training_data(SMALL)
    texts = {e.text: e for e in data.intents["delivery_cost"]}
    moscow = texts["сколько платить за доставку в мск"]
    assert moscow.entities == (Entity("city", "Москва", 30, 33),)
    kazan = texts["стоимость доставки в Казань"]
    assert kazan.entities == (Entity("city", "Казань", 21, 27),)
    order = data.intents["order_status"][3]
    assert order.text == "хочу узнать, где заказ 12345678"
    assert order.entities == (Entity("order_id", "12345678", 23, 31),)


def test_synonyms_include_annotated_values() -> None:
    synonyms = load_training_data(SMALL).synonym_map()
    assert synonyms["мск"] == "Москва"
    assert synonyms["масква"] == "Москва"


def test_brackets_without_an_entity_are_plain_text(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        "a.yml",
        "nlu:\n- intent: a\n  examples: |\n    - travel alert for [country]\n",
    )
    example = load_training_data(path).intents["a"][0]
    assert example.text == "travel alert for [country]"
    assert example.entities == ()


def test_long_form_examples_with_metadata(tmp_path: Path) -> None:
    text = (
        'version: "3.1"\nnlu:\n- intent: a\n  examples:\n'
        "  - text: |\n      первый\n    metadata: {sentiment: neutral}\n  - text: второй\n"
    )
    data = load_training_data(write(tmp_path, "a.yml", text))
    assert [(e.text, e.line) for e in data.intents["a"]] == [("первый", 5), ("второй", 8)]


@pytest.mark.parametrize(
    ("text", "line", "fragment"),
    [
        ("nlu:\n- intent: a\n  examples: |\n    - ok\n   - bad: [\n", 5, "invalid YAML"),
        ("nlu:\n- intent: a\n  examples: |\n    - ok\n    no dash\n", 5, "start with `- `"),
        ("nlu:\n- intent: a\n", 2, "has no `examples`"),
        ("nlu:\n- intent: a\n  exmples: |\n    - x\n", 3, "unknown key 'exmples'"),
        ("nlu:\n- intnt: a\n  examples: |\n    - x\n", 2, "unknown key 'intnt'"),
        ('nlu:\n- intent: a\n  examples: |\n    - x [y]{"entity": }\n', 4, "not valid JSON"),
        ("nlu:\n- intent: a\n  examples: '- x'\n", 3, "`examples: |`"),
        ("version: '1.0'\nnlu: []\n", 1, "unsupported version"),
        ("nlu: []\nstorys: []\n", 2, "unknown top-level key"),
        ("- intent: a\n", 1, "expected a mapping"),
    ],
)
def test_malformed_files_raise_data_error_at_file_and_line(
    tmp_path: Path, text: str, line: int, fragment: str
) -> None:
    path = write(tmp_path, "broken.yml", text)
    with pytest.raises(DataError) as caught:
        load_training_data(path)
    [problem] = caught.value.problems
    assert (problem.file, problem.line) == (str(path), line)
    assert fragment in problem.message
    assert str(problem).startswith(f"{path}:{line}: error: ")


def test_every_broken_file_is_reported(tmp_path: Path) -> None:
    write(tmp_path, "a.yml", "nlu:\n- intent: a\n")
    write(tmp_path, "b.yml", "nlu:\n- intent: b\n  examples: |\n    oops\n")
    with pytest.raises(DataError) as caught:
        load_training_data(tmp_path)
    assert [(Path(p.file).name, p.line) for p in caught.value.problems] == [
        ("a.yml", 2),
        ("b.yml", 4),
    ]


def test_missing_path_and_empty_directory(tmp_path: Path) -> None:
    with pytest.raises(DataError, match="no such file"):
        load_training_data(tmp_path / "nope.yml")
    with pytest.raises(DataError, match=r"no \*\.yml"):
        load_training_data(tmp_path)


def test_other_rasa_files_in_the_directory_are_ignored(tmp_path: Path) -> None:
    write(tmp_path, "domain.yml", 'version: "3.1"\nintents:\n- a\nresponses: {}\n')
    write(tmp_path, "nlu.yml", 'version: "3.1"\nnlu:\n- intent: a\n  examples: |\n    - x\n')
    assert len(load_training_data(tmp_path)) == 1


def test_fingerprint_follows_content_not_layout(tmp_path: Path) -> None:
    first = write(tmp_path, "a.yml", "nlu:\n- intent: a\n  examples: |\n    - x\n    - y\n")
    before = load_training_data(first).fingerprint()
    write(tmp_path, "a.yml", "\n\nnlu:\n- intent: a\n  examples: |\n    - x\n\n    - y\n")
    assert load_training_data(first).fingerprint() == before
    write(tmp_path, "a.yml", "nlu:\n- intent: a\n  examples: |\n    - x\n    - z\n")
    assert load_training_data(first).fingerprint() != before


def test_from_pairs_and_splits_keep_entity_tables() -> None:
    data = load_training_data(SMALL)
    pairs = TrainingData.from_pairs([("привет", "greet"), ("пока", "bye")], source="pairs")
    assert [(e.text, e.intent, e.file, e.line) for e in pairs.examples] == [
        ("привет", "greet", "pairs", 1),
        ("пока", "bye", "pairs", 2),
    ]
    split = data.with_examples(list(data.examples)[:3])
    assert len(split) == 3
    assert split.regexes == data.regexes
    assert split.synonym_map()["масква"] == "Москва"


def test_validation_reports_both_locations_of_a_conflict(tmp_path: Path) -> None:
    write(tmp_path, "a.yml", "nlu:\n- intent: a\n  examples: |\n    - Где заказ?\n    - x\n")
    write(tmp_path, "b.yml", "nlu:\n- intent: b\n  examples: |\n    - y\n    - где  заказ\n")
    problems = check_training_data(load_training_data(tmp_path))
    [conflict] = [p for p in problems if p.severity == "error"]
    a, b = tmp_path / "a.yml", tmp_path / "b.yml"
    assert (conflict.file, conflict.line) == (str(b), 5)
    assert f"{b}:5" in conflict.message
    assert f"{a}:4" in conflict.message


def test_validation_warnings_and_bad_regex(tmp_path: Path) -> None:
    text = (
        "nlu:\n- intent: a\n  examples: |\n    - x\n    - X\n"
        "- regex: order\n  examples: |\n    - (\\d+\n"
    )
    path = write(tmp_path, "a.yml", text)
    problems = check_training_data(load_training_data(path))
    assert [(p.line, p.severity) for p in problems] == [
        (4, "warning"),  # intent 'a' has 2 examples
        (5, "warning"),  # duplicate of line 4
        (8, "error"),  # the regex does not compile
    ]
    assert "first at" in problems[1].message and f"{path}:4" in problems[1].message


def test_the_small_fixture_is_clean() -> None:
    assert check_training_data(load_training_data(SMALL)) == []


def test_the_data_declares_its_language_in_rasas_config(tmp_path: Path) -> None:
    """`language` in config.yml beside the data: "en" is taken as written (no reading of Latin
    words as transliterated Russian), "ru" reads them back; a conflict or a bad code is an
    error at its file and line; without it the language is guessed from the alphabet."""
    from nlu.embedded import EmbeddedClassifier

    nlu_file = tmp_path / "nlu.yml"
    nlu_file.write_text(
        'version: "3.1"\nnlu:\n- intent: order\n  examples: |\n    - zakaz\n'
        "    - where is my zakaz\n- intent: hello\n  examples: |\n    - hello there\n"
        "    - hi\n", encoding="utf-8")
    config = tmp_path / "config.yml"
    config.write_text("recipe: default.v1\nlanguage: en\npipeline: []\n", encoding="utf-8")
    english = load_training_data(tmp_path)
    assert english.language == "en"
    assert not EmbeddedClassifier.train(english, threshold=0.0).model.latin_to_cyrillic
    config.write_text("language: ru\n", encoding="utf-8")
    russian = load_training_data(tmp_path)
    assert EmbeddedClassifier.train(russian, threshold=0.0).model.latin_to_cyrillic
    assert russian.fingerprint() != english.fingerprint()  # a cached model is retrained

    (tmp_path / "more.yml").write_text("language: en\n", encoding="utf-8")
    with pytest.raises(DataError) as conflict:
        load_training_data(tmp_path)
    assert "more.yml:1: error: language 'en', but another file says 'ru'" in str(conflict.value)
    (tmp_path / "more.yml").write_text("language: russian\n", encoding="utf-8")
    with pytest.raises(DataError) as bad:
        load_training_data(tmp_path)
    assert "more.yml:1: error: `language` must be a two-letter code" in str(bad.value)
    (tmp_path / "more.yml").unlink()
    config.unlink()
    assert load_training_data(tmp_path).language == ""
