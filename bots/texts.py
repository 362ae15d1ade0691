"""Customer-facing system texts (the ones flows do not own), in Russian and English."""

from __future__ import annotations

from typing import Literal

Language = Literal["ru", "en"]

_TEXTS: dict[str, dict[str, str]] = {
    "handoff_queued": {
        "ru": "Передаю разговор оператору. Вы {position}-й в очереди, вам ответит человек. "
        "Пока ждёте, можно дописать подробности — оператор их увидит.",
        "en": "I'm passing the conversation to an operator. You are number {position} in the "
        "queue and a person will answer. Feel free to add details while you wait.",
    },
    "non_text": {
        "ru": "Я пока понимаю только текст. Опишите, пожалуйста, вопрос словами "
        "или напишите «оператор», чтобы позвать человека.",
        "en": "I can only read text for now. Please describe your question in words, "
        "or write \u201coperator\u201d to reach a person.",
    },
    "stale_button": {
        "ru": "Эта кнопка больше не работает. Напишите вопрос словами.",
        "en": "This button no longer works. Please type your question.",
    },
    "too_long": {
        "ru": "Сообщение очень длинное, я прочитал только начало.",
        "en": "Your message is very long; I read only the beginning.",
    },
}


def text(key: str, language: str, **values: object) -> str:
    variants = _TEXTS[key]
    template = variants.get(language) or variants["ru"]
    return template.format(**values) if values else template
