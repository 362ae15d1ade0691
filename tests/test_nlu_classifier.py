"""The embedded classifier on a small Russian shop domain (tests/data/nlu_small)."""

from __future__ import annotations

from pathlib import Path

import pytest

from nlu.data import DataError, TrainingData, load_training_data
from nlu.embedded import RANKING_SIZE, EmbeddedClassifier
from nlu.evaluate import cross_validate, train_test
from nlu.types import OUT_OF_SCOPE, Entity, NLUBackend

SMALL = Path(__file__).parent / "data" / "nlu_small"


@pytest.fixture(scope="module")
def data() -> TrainingData:
    return load_training_data(SMALL)


@pytest.fixture(scope="module")
def classifier(data: TrainingData) -> EmbeddedClassifier:
    return EmbeddedClassifier.train(data, threshold=0.35)


@pytest.mark.parametrize(
    ("text", "intent"),
    [
        # phrasings that are not in the training data
        ("подскажите где сейчас моя посылка", "order_status"),
        ("сколько стоит курьер до дома", "delivery_cost"),
        ("хочу оформить возврат наушников", "return_item"),
        ("мне нужен живой оператор", "request_human"),
        ("доброго дня", "greet"),
        # typos, transliteration, wrong layout
        ("где мой закас", "order_status"),
        ("скока стоит доставка", "delivery_cost"),
        ("как вернуть товр", "return_item"),
        ("gde moi zakaz", "order_status"),
        ("ghbdtn", "greet"),
        ("ОПЕРАТОРА!!!", "request_human"),
    ],
)
def test_intents_of_new_phrasings(classifier: EmbeddedClassifier, text: str, intent: str) -> None:
    result = classifier.parse_sync(text)
    assert result.intent == intent, result.ranking
    assert result.confidence >= 0.35


@pytest.mark.parametrize("text", ["какая завтра погода", "посоветуй книгу почитать"])
def test_off_topic_is_out_of_scope_with_a_ranking(
    classifier: EmbeddedClassifier, text: str
) -> None:
    result = classifier.parse_sync(text)
    assert result.intent == OUT_OF_SCOPE
    assert not result.in_scope
    assert len(result.ranking) == RANKING_SIZE
    assert OUT_OF_SCOPE not in {s.name for s in result.ranking}
    assert result.top_guess == result.ranking[0]


@pytest.mark.parametrize("text", ["", "???", "qqqqxz"])
def test_text_without_known_features_is_out_of_scope(
    classifier: EmbeddedClassifier, text: str
) -> None:
    result = classifier.parse_sync(text)
    assert result.intent == OUT_OF_SCOPE
    assert len(result.ranking) == RANKING_SIZE


def test_ranking_is_sorted_and_holds_probabilities(classifier: EmbeddedClassifier) -> None:
    ranking = classifier.parse_sync("где мой заказ").ranking
    confidences = [s.confidence for s in ranking]
    assert confidences == sorted(confidences, reverse=True)
    assert all(0.0 <= c <= 1.0 for c in confidences)
    assert sum(confidences) <= 1.0 + 1e-6


def test_threshold_sends_uncertain_parses_out_of_scope(data: TrainingData) -> None:
    text = "заказ доставка"  # halfway between two intents
    lenient = EmbeddedClassifier.train(data, threshold=0.0).parse_sync(text)
    strict = EmbeddedClassifier.train(data, threshold=0.99).parse_sync(text)
    assert lenient.intent in {"order_status", "delivery_cost"}
    assert strict.intent == OUT_OF_SCOPE
    assert strict.ranking == lenient.ranking
    assert strict.confidence == pytest.approx(1 - lenient.confidence, abs=1e-6)


def test_without_out_of_scope_examples_only_the_threshold_decides(data: TrainingData) -> None:
    in_scope = data.with_examples(e for e in data.examples if e.intent != OUT_OF_SCOPE)
    classifier = EmbeddedClassifier.train(in_scope, threshold=0.35)
    assert classifier.parse_sync("где мой заказ").intent == "order_status"
    assert OUT_OF_SCOPE not in {s.name for s in classifier.parse_sync("привет").ranking}


def test_entities_from_regex_lookup_and_synonyms(classifier: EmbeddedClassifier) -> None:
    text = "заказ 12345678 в мск или в Нижний Новгород?"
    assert classifier.parse_sync(text).entities == (
        Entity("order_id", "12345678", 6, 14),
        Entity("city", "Москва", 17, 20),
        Entity("city", "Нижний Новгород", 27, 42),
    )
    # annotated values become lookup entries; matching ignores case and ё/е
    assert classifier.parse_sync("доставка в КАЗАНЬ").entities == (
        Entity("city", "Казань", 11, 17),
    )
    assert classifier.parse_sync("заказ 123 в москвабад").entities == ()


async def test_backend_interface(classifier: EmbeddedClassifier) -> None:
    backend: NLUBackend = classifier
    assert backend.name == "embedded"
    result = await backend.parse("где мой заказ")
    assert result.intent == "order_status"
    assert backend.known_intents() == {
        "order_status",
        "delivery_cost",
        "return_item",
        "greet",
        "request_human",
        OUT_OF_SCOPE,
    }


def test_bad_regex_and_single_intent_refuse_to_train(tmp_path: Path) -> None:
    path = tmp_path / "a.yml"
    path.write_text(
        "nlu:\n- intent: a\n  examples: |\n    - x\n- intent: b\n  examples: |\n    - y\n"
        "- regex: id\n  examples: |\n    - [0-9\n",
        encoding="utf-8",
    )
    with pytest.raises(DataError) as caught:
        EmbeddedClassifier.train(load_training_data(path), threshold=0.3)
    assert [(p.file, p.line) for p in caught.value.problems] == [(str(path), 10)]
    single = TrainingData.from_pairs([("x", "a"), ("y", "a")])
    with pytest.raises(DataError, match="at least two intents"):
        EmbeddedClassifier.train(single, threshold=0.3)


def test_english_model_keeps_latin_words() -> None:
    pairs = [(t, "order") for t in ("where is my order", "order status", "track my parcel")]
    pairs += [(t, "refund") for t in ("i want my money back", "refund please", "return money")]
    classifier = EmbeddedClassifier.train(TrainingData.from_pairs(pairs), threshold=0.0)
    assert not classifier.model.latin_to_cyrillic
    assert classifier.parse_sync("where is my parcel").intent == "order"


def test_cross_validation_report(data: TrainingData) -> None:
    progress: list[tuple[str, int, int]] = []
    report = cross_validate(data, threshold=0.35, folds=4, progress=lambda *a: progress.append(a))
    assert report.items == len(data)
    assert report.accuracy >= 0.6
    assert report.oos_recall is not None and report.in_scope_accuracy is not None
    assert {m.intent for m in report.per_intent} == set(data.intents)
    assert sum(m.support for m in report.per_intent) == len(data)
    assert 0 < report.parse_p50_ms <= report.parse_p99_ms
    assert report.train_seconds > 0
    assert progress[0] == ("cross-validation", 0, 4) and progress[-1] == ("cross-validation", 4, 4)
    for confusion in report.confusions:
        assert confusion.true != confusion.predicted
        assert confusion.example in {e.text for e in data.intents[confusion.true]}


def test_train_test_report_counts_errors(data: TrainingData) -> None:
    test = TrainingData.from_pairs(
        [("где мой заказ", "order_status"), ("где мой заказ", "greet"), ("погода", OUT_OF_SCOPE)]
    )
    report = train_test(data, test, threshold=0.35)
    assert report.accuracy == pytest.approx(2 / 3)
    assert report.oos_recall == 1.0
    assert report.in_scope_accuracy == 0.5
    [confusion] = report.confusions
    assert (confusion.true, confusion.predicted, confusion.count) == ("greet", "order_status", 1)
    assert report.to_dict()["confusions"][0]["example"] == "где мой заказ"
