"""Customer-facing system texts (the ones flows do not own), in Russian and English."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

Language = Literal["ru", "en"]

_TEXTS: dict[str, dict[str, str]] = {
    "handoff_queued": {
        "ru": "Передаю разговор оператору. Вы {position}-й в очереди, вам ответит человек. "
        "Пока ждёте, можно дописать подробности — оператор их увидит.",
        "en": "I'm passing the conversation to an operator. You are number {position} in the "
        "queue and a person will answer. Feel free to add details while you wait.",
    },
    "handoff_position": {
        "ru": "Вы {position}-й в очереди.",
        "en": "You are number {position} in the queue.",
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
    "queue_update_closed": {
        "ru": "Вы {position}-й в очереди. Операторы сейчас не работают: ответим {when}.",
        "en": "You are number {position} in the queue. Our operators are off: we will answer "
              "{when}.",
    },
    "queue_update": {
        "ru": "Вы {position}-й в очереди, ждать примерно {minutes} мин.",
        "en": "You are number {position} in the queue, about {minutes} min to wait.",
    },
    "operator_left": {
        "ru": "Оператор отключился, поэтому разговор снова в очереди: его подхватит другой "
              "сотрудник. Переписка сохранена, повторять ничего не нужно.",
        "en": "Your operator went offline, so the conversation is back in the queue: a colleague "
              "will pick it up. Everything you wrote is kept; no need to repeat it.",
    },
    "back_in_queue": {
        "ru": "Оператор передал ваш вопрос коллегам: вы снова в очереди, и вам ответит первый "
              "освободившийся сотрудник. Переписка сохранена.",
        "en": "Your operator passed your question on to the team: you are back in the queue, "
              "and the first colleague free will answer. Everything you wrote is kept.",
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
    "link_code": {
        "ru": "Код для связи аккаунтов: {code}\nНапишите его нам из другой сети (Telegram, "
        "ВКонтакте или чат на сайте) в течение {minutes} минут — и мы будем видеть всю вашу "
        "историю. Отменить связь: /unlink.",
        "en": "Your account link code: {code}\nSend it to us from the other network (Telegram, "
        "VK or the chat on our site) within {minutes} minutes and we will see your whole history. "
        "To undo the link: /unlink.",
    },
    "linked": {
        "ru": "Готово: аккаунты связаны. Ответим туда, откуда вы написали последним. "
        "Отменить: /unlink.",
        "en": "Done: your accounts are linked. We will answer where you wrote from last. "
        "To undo: /unlink.",
    },
    "link_unknown": {
        "ru": "Код не подошёл или устарел. Получите новый командой /link.",
        "en": "This code is wrong or has expired. Get a new one with /link.",
    },
    "link_same_channel": {
        "ru": "Этот код нужно отправить из другой сети, не оттуда, где вы его получили.",
        "en": "Send this code from the other network, not from where you got it.",
    },
    "link_busy": {
        "ru": "Сейчас связать нельзя: сначала завершите разговор с оператором здесь.",
        "en": "Linking is not possible right now: finish the conversation with the operator "
        "here first.",
    },
    "already_linked": {
        "ru": "Аккаунты уже связаны. Отменить связь: /unlink.",
        "en": "Your accounts are already linked. To undo: /unlink.",
    },
    "unlinked": {
        "ru": "Связь аккаунтов отменена.",
        "en": "Your accounts are no longer linked.",
    },
    "not_linked": {
        "ru": "Аккаунты не связаны. Связать: /link.",
        "en": "Your accounts are not linked. To link them: /link.",
    },
    "processing_failed": {
        "ru": "Извините, у меня не получилось обработать это сообщение. Напишите, пожалуйста, "
        "иначе или позовите оператора — напишите «оператор».",
        "en": "Sorry, I could not process that message. Please put it another way, or write "
        "\u201coperator\u201d to reach a person.",
    },
    "too_fast": {
        "ru": "Вы пишете очень часто — я не успеваю отвечать на каждое сообщение. Всё, что вы "
        "написали, сохранено. Сделайте паузу в несколько секунд, и я отвечу на следующее.",
        "en": "You are writing very fast — I can't answer every message. Everything you wrote "
        "is saved. Pause for a few seconds and I will answer the next one.",
    },
    "too_long": {
        "ru": "Сообщение очень длинное, я прочитал только начало.",
        "en": "Your message is very long; I read only the beginning.",
    },
}


def opening(opens: datetime, now: datetime, language: str) -> str:
    """When the team opens, as a customer reads it: "сегодня в 09:00", "tomorrow at 09:00",
    "24.12 в 09:00" (in the team's time zone, which `opens` carries)."""
    days = (opens.date() - now.astimezone(opens.tzinfo).date()).days
    at = opens.strftime("%H:%M")
    english = language == "en"
    if days == 0:
        return f"today at {at}" if english else f"сегодня в {at}"
    if days == 1:
        return f"tomorrow at {at}" if english else f"завтра в {at}"
    return opens.strftime("%d.%m at %H:%M" if english else "%d.%m в %H:%M")


def text(key: str, language: str, **values: object) -> str:
    variants = _TEXTS[key]
    template = variants.get(language) or variants["ru"]
    return template.format(**values) if values else template
