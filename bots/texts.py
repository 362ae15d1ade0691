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
    "handoff_wait": {
        "ru": "Обычно отвечаем примерно через {minutes} мин.",
        "en": "We usually answer in about {minutes} min.",
    },
    "handoff_closed_hours": {
        "ru": "Сейчас операторы не работают. Мы ответим {when}; ваш вопрос уже в очереди.",
        "en": "Our operators are off right now. We will answer {when}; your question is queued.",
    },
    "queue_update": {
        "ru": "Вы {position}-й в очереди, ждать примерно {minutes} мин.",
        "en": "You are number {position} in the queue, about {minutes} min to wait.",
    },
    "operator_joined": {
        "ru": "К разговору подключился оператор {name}.",
        "en": "Operator {name} has joined the conversation.",
    },
    "operator_joined_auto": {
        "ru": "К разговору подключился оператор.",
        "en": "An operator has joined the conversation.",
    },
    "closed_rate": {
        "ru": "Разговор с оператором завершён. Оцените, пожалуйста, помощь от 1 до 5:",
        "en": "The conversation with the operator is closed. Please rate the help from 1 to 5:",
    },
    "back_to_bot": {
        "ru": "Вы снова общаетесь с ботом. Напишите вопрос или «оператор», чтобы позвать человека.",
        "en": "You are talking to the bot again. Type a question, or “operator” for a person.",
    },
    "cancelled": {
        "ru": "Хорошо, отменил ожидание оператора. Чем ещё помочь?",
        "en": "OK, I cancelled the wait for an operator. How else can I help?",
    },
    "ask_comment": {
        "ru": "Спасибо за оценку! Если хотите, напишите одним сообщением, что было хорошо "
        "или что нам улучшить.",
        "en": "Thank you! If you like, tell us in one message what went well or what to improve.",
    },
    "comment_thanks": {
        "ru": "Спасибо, передам команде!",
        "en": "Thank you, I'll pass it on to the team!",
    },
    "rating_thanks": {
        "ru": "Спасибо за оценку!",
        "en": "Thank you for the rating!",
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
