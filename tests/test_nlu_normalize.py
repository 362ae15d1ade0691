"""Normalisation: case, ё, punctuation, emoji, numbers, transliteration and the wrong layout."""

from __future__ import annotations

import pytest

from nlu.normalize import NUMBER, analyze, normalize
from nlu.translit import layout_candidates, translit_candidates


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("Где МОЙ ЗАКАЗ?!", "где мой заказ"),
        ("Ещё  раз... всё-таки", "еще раз все таки"),
        ("ужас 😡😡", "ужас 😡 😡"),
        ("заказ №12345678, где?", f"заказ {NUMBER} где"),
        ("зaкaз", "заказ"),  # Latin "a" typed inside a Cyrillic word
        ("", ""),
    ],
)
def test_plain_normalisation(text: str, expected: str) -> None:
    assert normalize(text) == expected


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("gde moi zakaz", "где мои заказ"),
        ("skolko stoit dostavka", "сколько стоит доставка"),  # the dropped soft sign comes back
        ("ya hochu vernut den'gi", "я хочу вернут деньги"),
        ("eto ne tot tovar", "это не тот товар"),
        ("kogda budet dostavka v moskvu", "когда будет доставка в москву"),
    ],
)
def test_transliteration_back_to_cyrillic(text: str, expected: str) -> None:
    assert normalize(text) == expected


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("ghbdtn", "привет"),
        ("Ghbdtn, rfr ltkf?", "привет как дела"),
        ("cgfcb,j", "спасибо"),  # the comma key is the letter б
        ("vjq pfrfp", "мой заказ"),
    ],
)
def test_wrong_keyboard_layout(text: str, expected: str) -> None:
    assert normalize(text) == expected


@pytest.mark.parametrize("text", ["hello world", "iphone", "wifi"])
def test_latin_that_does_not_read_as_russian_stays(text: str) -> None:
    assert normalize(text) == text


def test_english_loanwords_read_as_their_russian_spelling() -> None:
    assert normalize("wifi router") == "wifi роутер"


def test_short_latin_words_follow_the_message() -> None:
    # alone, "v" and "i" are as likely English; next to Russian words they are prepositions
    assert normalize("v") == "v"
    assert normalize("i") == "i"
    assert normalize("zakaz v moskvu") == "заказ в москву"
    assert normalize("где i заказ") == "где и заказ"


def test_mapping_can_be_switched_off_for_latin_models() -> None:
    assert normalize("gde moi zakaz", latin_to_cyrillic=False) == "gde moi zakaz"


def test_lemmas_and_original_latin_words() -> None:
    result = analyze("gde moi zakazy")
    assert result.tokens == ("где", "мои", "заказы")
    assert result.lemmas == ("где", "мой", "заказ")
    assert result.originals == ("gde", "moi", "zakazy")
    assert analyze("где заказы").originals == ()


def test_candidates_put_the_likely_reading_first() -> None:
    assert next(translit_candidates("zakaz")) == "заказ"
    assert "щука" in set(translit_candidates("shchuka"))
    assert list(layout_candidates("ghbdtn!")) == ["привет!"]
    assert list(layout_candidates("привет")) == []
