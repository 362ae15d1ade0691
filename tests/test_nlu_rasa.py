"""The Rasa backend against a fake Rasa server: mapping, timeouts, errors and the fallback."""

from __future__ import annotations

import logging
import time
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from bots.runtime import nlu_backend
from bots.settings import Settings
from fakes.rasa import FakeRasa
from nlu.data import load_training_data
from nlu.embedded import EmbeddedClassifier
from nlu.rasa import RasaBackend, probe, result_from_rasa
from nlu.types import OUT_OF_SCOPE

SMALL = Path(__file__).parent / "data" / "nlu_small"
THRESHOLD = 0.35


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture(scope="module")
def embedded() -> EmbeddedClassifier:
    return EmbeddedClassifier.train(load_training_data(SMALL), threshold=THRESHOLD)


@pytest.fixture
async def rasa() -> AsyncIterator[FakeRasa]:
    async with FakeRasa() as fake:
        yield fake


@pytest.fixture
def clock() -> Clock:
    return Clock()


def backend(rasa: FakeRasa, embedded: EmbeddedClassifier, clock: Clock) -> RasaBackend:
    return RasaBackend(rasa.url, embedded, threshold=THRESHOLD, timeout=0.3, retry_seconds=5.0,
                       clock=clock)


def outage_lines(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.name == "nlu.rasa"]


async def test_parses_through_rasa(rasa: FakeRasa, embedded: EmbeddedClassifier,
                                   clock: Clock) -> None:
    rasa.answer("where is 12345678", "order_status", 0.91, others={"out_of_scope": 0.05,
                "delivery_cost": 0.03},
                entities=[{"entity": "order_number", "value": "12345678", "start": 9, "end": 17,
                           "extractor": "DIETClassifier"}])
    result = await backend(rasa, embedded, clock).parse("where is 12345678")
    assert (result.intent, result.confidence) == ("order_status", pytest.approx(0.91))
    # out_of_scope is never a guess in the ranking, as with the embedded model
    assert [s.name for s in result.ranking] == ["order_status", "delivery_cost"]
    [entity] = result.entities
    assert (entity.entity, entity.value, entity.start, entity.end) == (
        "order_number", "12345678", 9, 17)
    assert rasa.texts == ["where is 12345678"]


async def test_threshold_and_rasas_out_of_scope(rasa: FakeRasa, embedded: EmbeddedClassifier,
                                                clock: Clock) -> None:
    rasa.answer("hm", "greet", 0.2, others={"order_status": 0.1})
    rasa.answer("weather?", "out_of_scope", 0.8, others={"greet": 0.15})
    nlu = backend(rasa, embedded, clock)
    unsure = await nlu.parse("hm")
    assert unsure.intent == OUT_OF_SCOPE
    assert unsure.confidence == pytest.approx(0.8)
    assert unsure.top_guess is not None and unsure.top_guess.name == "greet"
    off_topic = await nlu.parse("weather?")
    assert off_topic.intent == OUT_OF_SCOPE
    assert [s.name for s in off_topic.ranking] == ["greet"]
    assert not nlu.down


async def test_timeout_falls_back_and_is_reported_once(
    rasa: FakeRasa, embedded: EmbeddedClassifier, clock: Clock, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="nlu.rasa")
    nlu = backend(rasa, embedded, clock)
    rasa.delay = 1.0
    start = time.perf_counter()
    result = await nlu.parse("где мой заказ")
    assert time.perf_counter() - start < 0.9  # the 0.3 s timeout, not Rasa's 1 s
    assert result == await embedded.parse("где мой заказ")
    assert nlu.down
    # within the retry interval the fallback answers without asking Rasa
    for _ in range(5):
        assert (await nlu.parse("сколько стоит доставка")).intent == "delivery_cost"
    assert rasa.texts == ["где мой заказ"]
    clock.now += 6  # Rasa is asked again, still too slow: no second report
    await nlu.parse("где мой заказ")
    assert len(rasa.texts) == 2
    [down] = outage_lines(caplog)
    assert "does not answer (no answer within 0.3 s)" in down
    assert rasa.url in down


async def test_back_after_an_outage(rasa: FakeRasa, embedded: EmbeddedClassifier, clock: Clock,
                                    caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="nlu.rasa")
    nlu = backend(rasa, embedded, clock)
    rasa.answer("hello", "greet", 0.97)
    await rasa.stop()
    assert (await nlu.parse("hello")).intent == "greet"  # from the fallback
    assert nlu.down
    await rasa.start()
    clock.now += 4.9
    await nlu.parse("hello")
    assert rasa.texts == []  # not yet: the retry interval has not passed
    clock.now += 0.2
    result = await nlu.parse("hello")
    assert (result.intent, result.confidence) == ("greet", pytest.approx(0.97))
    assert not nlu.down
    assert rasa.texts == ["hello"]
    down, back = outage_lines(caplog)
    assert "does not answer (ClientConnectorError" in down
    assert "answers again" in back


@pytest.mark.parametrize(
    ("status", "body", "reason"),
    [
        (500, None, "HTTP 500 Internal Server Error"),
        (200, "<html>not json", "JSONDecodeError"),
        (200, "[1, 2]", "the answer is not a JSON object"),
        (200, '{"text": "x", "intent": null}', "the answer has no intent"),
        (200, '{"intent": {"name": "greet"}}', "an intent needs a name and a confidence"),
    ],
)
async def test_bad_answers_fall_back(
    rasa: FakeRasa, embedded: EmbeddedClassifier, clock: Clock,
    caplog: pytest.LogCaptureFixture, status: int, body: str | None, reason: str,
) -> None:
    caplog.set_level(logging.INFO, logger="nlu.rasa")
    rasa.status, rasa.body = status, body
    nlu = backend(rasa, embedded, clock)
    assert await nlu.parse("привет") == await embedded.parse("привет")
    [line] = outage_lines(caplog)
    assert reason in line
    assert await probe(rasa.url, timeout=0.3) is not None


async def test_probe(rasa: FakeRasa) -> None:
    assert await probe(rasa.url, timeout=0.3) is None
    await rasa.stop()
    assert "ClientConnectorError" in (await probe(rasa.url, timeout=0.3) or "")


def test_an_entity_without_offsets_is_skipped(caplog: pytest.LogCaptureFixture) -> None:
    payload = {
        "intent": {"name": "greet", "confidence": 0.9},
        "entities": [{"entity": "city", "value": "Москва"},
                     {"entity": "city", "value": "Москва", "start": 0, "end": 3}],
    }
    result = result_from_rasa("мск", payload, THRESHOLD)
    assert [(e.entity, e.value, e.start) for e in result.entities] == [("city", "Москва", 0)]
    assert "without a name or offsets" in caplog.text


def test_settings_choose_the_backend(settings: Settings, embedded: EmbeddedClassifier) -> None:
    assert nlu_backend(settings, embedded, print) is embedded
    rasa_settings = settings.model_copy(
        update={"nlu_backend": "rasa", "rasa_url": "http://127.0.0.1:5999/", "rasa_timeout": 0.5}
    )
    chosen = nlu_backend(rasa_settings, embedded, lambda _msg: None)
    assert isinstance(chosen, RasaBackend)
    assert (chosen.url, chosen.fallback, chosen.threshold) == (
        "http://127.0.0.1:5999", embedded, settings.nlu_threshold)
    assert chosen.known_intents() == embedded.known_intents()
