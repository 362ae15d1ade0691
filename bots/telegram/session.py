"""The Bot API client as the bot uses it: one aiogram `Bot` with its aiohttp session."""

from __future__ import annotations

from typing import Any

import aiogram.methods
from aiogram import Bot
from aiogram.client.session.aiohttp import AiohttpSession
from aiogram.client.telegram import TelegramAPIServer
from aiogram.methods.base import Response, TelegramMethod

# aiogram reads every answer through `Response[<the method's result type>]`, a pydantic generic
# model that pydantic caches only weakly. Nothing else holds it, so the garbage collector takes
# it and the next call builds it again: 2-3 ms of CPU per Bot API call, a fifth of a handoff's
# time here. Holding each one for the life of the process makes that a dictionary lookup.
_RESPONSE_MODELS: list[Any] = []


def keep_response_models() -> None:
    if _RESPONSE_MODELS:
        return
    returning: list[Any] = []
    for name in aiogram.methods.__all__:
        method = getattr(aiogram.methods, name)
        if (isinstance(method, type) and issubclass(method, TelegramMethod)
                and method is not TelegramMethod):
            result = getattr(method, "__returning__", None)
            if result is not None and result not in returning:
                returning.append(result)
    _RESPONSE_MODELS.extend(Response[result] for result in returning)  # type: ignore[valid-type]


def telegram_bot(token: str, api_url: str) -> Bot:
    keep_response_models()
    return Bot(token, session=AiohttpSession(api=TelegramAPIServer.from_base(api_url)))
