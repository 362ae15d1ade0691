"""Parsing what operators type in the desk: commands, internal notes, replies."""

from __future__ import annotations

import re
from dataclasses import dataclass

# What each desk command does, in the order the hint for an unknown command lists them.
COMMAND_HELP = {
    "take": "взять разговор",
    "close": "[причина] закрыть (клиенту — оценка)",
    "bot": "вернуть клиента боту",
    "transfer": "@оператор | queue | desk <стол> — передать",
    "ban": "[причина] заблокировать клиента",
    "unban": "разблокировать",
    "tag": "теги через пробел",
    "note": "текст — заметка для своих",
    "t": "имя — отправить шаблон",
    "templates": "список; add имя текст — добавить",
    "queue": "обновить сводку очереди",
    "notice": "сегмент | текст — рассылка клиентам; send ID — отправить (руководители)",
    "console": "ссылка для входа в веб-консоль (придёт в личные сообщения с ботом)",
    "stats": "отчёт команды: /stats [today|yesterday|7d|30d]",
    "online": "принимать разговоры",
    "pause": "не получать новые автоматически",
    "offline": "не принимать разговоры",
    "shift": "[@кто] [зона] дни часы | off — смена (чужая — руководители)",
    "learn": "интент [текст] — научить бота непонятым сообщениям клиента",
    "totemplate": "имя — ответ оператора (ответом на него) в шаблоны",
    "toflow": "интент — ответ оператора в черновик сценария",
    "reload": "перечитать сценарии и NLU (тренеры)",
    "grant": "@кто operator|supervisor|trainer — дать роль (руководители)",
    "revoke": "@кто [причина] — отозвать доступ, разговоры в очередь (руководители)",
    "dm": "[текст] — комментарий ВКонтакте: написать автору в личку",
    "hide": "[id] — комментарий ВКонтакте: скрыть (удалить)",
    "delete": "[id] — комментарий ВКонтакте: удалить",
}
COMMANDS = frozenset(COMMAND_HELP)
NOTE_PREFIXES = ("!", "//")
# Telegram's own idea of a bot command: "/" + up to 32 letters, digits or "_", optionally
# "@botname", then whitespace or the end. "/home/user" or "/ 5" are ordinary text.
_COMMAND = re.compile(r"/([A-Za-z0-9_]{1,32})(?:@([A-Za-z0-9_]{1,64}))?(?=\s|$)(.*)", re.S)


@dataclass(frozen=True, slots=True)
class Command:
    name: str  # lower-cased; may be one the desk does not know (see `known`)
    args: str  # the rest of the message, stripped; keeps its line breaks
    bot: str = ""  # the "@username" suffix without "@", "" when none

    @property
    def words(self) -> list[str]:
        return self.args.split()

    @property
    def known(self) -> bool:
        return self.name in COMMANDS


def parse_command(text: str) -> Command | None:
    """`/transfer@shop_bot @anna` -> Command("transfer", "@anna", "shop_bot"); None when the
    text is not shaped like a command at all. Unknown commands come back too (`known` is
    False): they are never relayed to the customer."""
    match = _COMMAND.match(text)
    if match is None:
        return None
    name, bot, rest = match.groups()
    return Command(name.lower(), rest.strip(), bot or "")


def is_note(text: str) -> bool:
    """Internal notes never reach the customer."""
    return text.lstrip().startswith(NOTE_PREFIXES)


def command_hint(name: str) -> str:
    """The answer to an unknown command: what exists, one line each."""
    lines = [f"Нет команды /{name}. Команды desk:"]
    lines += [f"/{command} {what}" for command, what in COMMAND_HELP.items()]
    return "\n".join(lines)
