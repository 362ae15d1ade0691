"""The Rasa backend: parse through a running Rasa server, the embedded classifier as a stand-in.

`POST {RASA_URL}/model/parse` with `{"text": ...}` answers Rasa's parse result (intent,
intent_ranking, entities). The same threshold and out-of-scope rules as the embedded model are
applied to it, so flows see the same kind of `ParseResult` whichever backend answered.

While Rasa does not answer (refused, timed out, an error status, a malformed body) every
message is parsed by the embedded classifier, trained on the same data. The outage is logged
once when it starts and once when it ends, not per message; during it Rasa is asked again at
most every `retry_seconds`, so a dead server costs customers neither timeouts nor log floods.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping
from typing import Any

import aiohttp

from nlu.types import OUT_OF_SCOPE, Entity, IntentScore, NLUBackend, ParseResult

log = logging.getLogger(__name__)

RANKING_SIZE = 5
DEFAULT_TIMEOUT = 1.0
DEFAULT_RETRY_SECONDS = 5.0


class RasaError(Exception):
    """Rasa gave no usable answer; the message says why in one line."""


class RasaBackend:
    name = "rasa"

    def __init__(
        self,
        url: str,
        fallback: NLUBackend,
        *,
        threshold: float,
        timeout: float = DEFAULT_TIMEOUT,
        retry_seconds: float = DEFAULT_RETRY_SECONDS,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.url = url.rstrip("/")
        self.fallback = fallback
        self.threshold = threshold
        self._timeout = aiohttp.ClientTimeout(total=timeout)
        self._retry_seconds = retry_seconds
        self._clock = clock
        self._down = False
        self._next_try = 0.0

    @property
    def down(self) -> bool:
        """True while parses go to the embedded classifier because Rasa did not answer."""
        return self._down

    def known_intents(self) -> frozenset[str]:
        # Rasa is trained on the same data (supportbot nlu export-rasa) as the fallback.
        return self.fallback.known_intents()

    async def parse(self, text: str) -> ParseResult:
        if self._down and self._clock() < self._next_try:
            return await self.fallback.parse(text)
        try:
            payload = await self.request(text)
            result = result_from_rasa(text, payload, self.threshold)
        except RasaError as exc:
            self._failed(exc)
            return await self.fallback.parse(text)
        self._answered()
        return result

    async def request(self, text: str) -> Mapping[str, Any]:
        return await post_parse(self.url, text, self._timeout)

    def _failed(self, exc: RasaError) -> None:
        self._next_try = self._clock() + self._retry_seconds
        if not self._down:
            self._down = True
            log.warning(
                "Rasa at %s does not answer (%s): parsing with the embedded classifier "
                "until it does (asking again every %g s)", self.url, exc, self._retry_seconds,
            )

    def _answered(self) -> None:
        if self._down:
            self._down = False
            log.warning("Rasa at %s answers again: parsing through it", self.url)


async def post_parse(url: str, text: str, timeout: aiohttp.ClientTimeout) -> Mapping[str, Any]:
    """One `/model/parse` call; any failure is a `RasaError`."""
    # A session per call: nothing to close when a reload swaps the brain or at shutdown,
    # and a loopback connection costs far less than Rasa's own parse.
    try:
        async with (
            aiohttp.ClientSession(timeout=timeout) as session,
            session.post(f"{url}/model/parse", json={"text": text}) as response,
        ):
            if response.status != 200:
                raise RasaError(f"HTTP {response.status} {response.reason or ''}".strip())
            payload = await response.json(content_type=None)
    except TimeoutError:
        raise RasaError(f"no answer within {timeout.total:g} s") from None
    except (aiohttp.ClientError, ValueError) as exc:
        raise RasaError(f"{type(exc).__name__}: {exc}") from None
    if not isinstance(payload, Mapping):
        raise RasaError("the answer is not a JSON object")
    return payload


def result_from_rasa(text: str, payload: Mapping[str, Any], threshold: float) -> ParseResult:
    """Rasa's parse answer as a `ParseResult`, with the embedded model's out-of-scope rules."""
    intent = payload.get("intent")
    if not isinstance(intent, Mapping):
        raise RasaError("the answer has no intent (is a model loaded?)")
    best = _score(intent)
    scores = [_score(item) for item in _list(payload.get("intent_ranking"))]
    if not scores and best is not None:
        scores = [best]
    ranking = tuple(
        s for s in sorted(scores, key=lambda s: -s.confidence) if s.name != OUT_OF_SCOPE
    )[:RANKING_SIZE]
    entities = tuple(e for e in map(_entity, _list(payload.get("entities"))) if e is not None)
    top = ranking[0] if ranking else None
    if best is None or top is None or best.name == OUT_OF_SCOPE or best.confidence < threshold:
        confidence = 1.0 - (top.confidence if top else 0.0)
        return ParseResult(text, OUT_OF_SCOPE, confidence, ranking, entities)
    return ParseResult(text, best.name, best.confidence, ranking, entities)


def _score(item: Any) -> IntentScore:
    if not isinstance(item, Mapping):
        raise RasaError(f"an intent is not an object: {item!r}")
    name, confidence = item.get("name"), item.get("confidence")
    if not isinstance(name, str) or not isinstance(confidence, int | float):
        raise RasaError(f"an intent needs a name and a confidence: {dict(item)!r}")
    return IntentScore(name, float(confidence))


def _list(value: Any) -> list[Any]:
    if value is None:
        return []
    if not isinstance(value, list):
        raise RasaError(f"expected a list, got {type(value).__name__}")
    return value


def _entity(item: Any) -> Entity | None:
    """Rasa's entity; one without a name or offsets is left out (and logged)."""
    if isinstance(item, Mapping):
        entity, start, end = item.get("entity"), item.get("start"), item.get("end")
        if isinstance(entity, str) and isinstance(start, int) and isinstance(end, int):
            return Entity(entity, str(item.get("value", "")), start, end)
    log.warning("Rasa returned an entity without a name or offsets, skipped: %r", item)
    return None


async def probe(url: str, timeout: float = DEFAULT_TIMEOUT) -> str | None:
    """Why Rasa at `url` cannot parse, or None when it can (for tests and scripts)."""
    try:
        payload = await post_parse(url.rstrip("/"), "ping", aiohttp.ClientTimeout(total=timeout))
        result_from_rasa("ping", payload, 0.0)
    except RasaError as exc:
        return str(exc)
    return None
