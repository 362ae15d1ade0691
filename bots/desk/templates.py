"""Reply templates operators send with `/t name`: a YAML file, editable from the desk.

The file is a mapping name -> text. Adding from the desk (`/templates add name text`) rewrites
the file atomically and keeps the others as they were.
"""

from __future__ import annotations

import os
import re
import tempfile
from pathlib import Path

import yaml

NAME = re.compile(r"^[\w-]{1,32}$")


class TemplateError(ValueError):
    pass


class Templates:
    def __init__(self, path: Path) -> None:
        self.path = path
        self._items: dict[str, str] = {}
        self.reload()

    def reload(self) -> None:
        if not self.path.exists():
            self._items = {}
            return
        try:
            data = yaml.safe_load(self.path.read_text(encoding="utf-8")) or {}
        except yaml.YAMLError as exc:
            mark = getattr(exc, "problem_mark", None)
            where = f"{self.path}:{mark.line + 1}" if mark else str(self.path)
            raise TemplateError(f"{where}: not valid YAML") from None
        if not isinstance(data, dict) or not all(
            isinstance(k, str) and isinstance(v, str) for k, v in data.items()
        ):
            raise TemplateError(f"{self.path}: must map template names to texts")
        self._items = data

    def names(self) -> list[str]:
        return sorted(self._items)

    def get(self, name: str) -> str | None:
        return self._items.get(name)

    def add(self, name: str, text: str) -> None:
        if not NAME.match(name):
            raise TemplateError("a template name is 1-32 letters, digits, _ or -")
        if not text.strip():
            raise TemplateError("a template needs a text")
        items = {**self._items, name: text.strip()}
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=self.path.parent, prefix=".templates-")
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            yaml.safe_dump(items, handle, allow_unicode=True, sort_keys=True)
        os.replace(tmp, self.path)
        self._items = items
