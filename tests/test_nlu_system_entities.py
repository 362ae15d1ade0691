"""Built-in entities: the spellings customers use, one canonical value each, no false finds."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import date

import pytest

from nlu import system_entities
from nlu.data import TrainingData
from nlu.entities import EntityExtractor


@pytest.fixture(autouse=True)
def fixed_today() -> Iterator[None]:
    real = system_entities.today
    system_entities.today = lambda: date(2026, 12, 6)  # a Sunday
    yield
    system_entities.today = real


def found(text: str, extractor: EntityExtractor | None = None) -> list[tuple[str, str, str]]:
    extractor = extractor or EntityExtractor.from_data(TrainingData())
    return [(e.entity, e.value, text[e.start : e.end]) for e in extractor.extract(text)]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("мой номер +7 (916) 123-45-67", [("phone", "+79161234567", "+7 (916) 123-45-67")]),
        ("звоните 8 916 1234567", [("phone", "+79161234567", "8 916 1234567")]),
        ("89161234567", [("phone", "+79161234567", "89161234567")]),
        ("+44 20 7946 0958", [("phone", "+442079460958", "+44 20 7946 0958")]),
        ("почта Ivan.Petrov@Mail.ru.", [("email", "ivan.petrov@mail.ru", "Ivan.Petrov@Mail.ru")]),
        ("списали 1 500 руб", [("amount", "1500", "1 500 руб"), ("currency", "RUB", "1 500 руб")]),
        ("верните $20", [("amount", "20", "$20"), ("currency", "USD", "$20")]),
        ("100,50 евро", [("amount", "100.5", "100,50 евро"), ("currency", "EUR", "100,50 евро")]),
        ("заплатил 2к", [("amount", "2000", "2к")]),
        ("3 тыс рублей", [("amount", "3000", "3 тыс рублей"), ("currency", "RUB", "3 тыс рублей")]),
        ("доставьте завтра", [("date", "2026-12-07", "завтра")]),
        ("вчера", [("date", "2026-12-05", "вчера")]),
        ("12 марта", [("date", "2027-03-12", "12 марта")]),
        ("к 24 декабря", [("date", "2026-12-24", "24 декабря")]),
        ("на 12.03", [("date", "2027-03-12", "12.03")]),
        ("заказ от 01.12.2026", [("date", "2026-12-01", "01.12.2026")]),
        ("в пятницу", [("date", "2026-12-11", "в пятницу")]),
        ("on Sunday", [("date", "2026-12-13", "on Sunday")]),
        ("March 12th, 2027", [("date", "2027-03-12", "March 12th, 2027")]),
    ],
)
def test_spellings_give_one_canonical_value(
    text: str, expected: list[tuple[str, str, str]]
) -> None:
    assert found(text) == expected


@pytest.mark.parametrize(
    "text",
    ["заказ 1234567", "1.5 кг", "2 раза", "рабочая среда", "31.02", "в 10.30 утра", "123", "a@b"],
)
def test_numbers_and_words_that_only_look_like_entities_are_not_found(text: str) -> None:
    assert found(text) == []


def test_data_that_defines_a_name_takes_it_over() -> None:
    data = TrainingData()
    own = EntityExtractor({"phone": [r"\b\d{3}-\d{2}\b"]}, {}, {})
    assert found("123-45 или 8 916 1234567", own) == [("phone", "123-45", "123-45")]
    assert found("email a@b.ru", EntityExtractor.from_data(data)) == [
        ("email", "a@b.ru", "a@b.ru")
    ]


def test_an_amount_that_overlaps_an_order_number_wins_with_its_currency() -> None:
    extractor = EntityExtractor({"order_number": [r"\b\d{6,10}\b"]}, {}, {})
    assert found("вернули 150000 руб", extractor) == [
        ("amount", "150000", "150000 руб"),
        ("currency", "RUB", "150000 руб"),
    ]
    assert found("заказ 1500000", extractor) == [("order_number", "1500000", "1500000")]
