"""Reply templates operators send with `/t name`: a YAML file, editable from the desk.

The file is a mapping name -> text. Adding from the desk (`/templates add name text`) rewrites
the file atomically and keeps the others as they were. Several worker processes share the
file: each re-reads it when it changed on disk, and an addition re-reads it under a lock
first, so two operators adding at once (through different processes) both keep theirs.
"""

from __future__ import annotations

import contextlib
import fcntl
import logging
import os
import re
import tempfile
from collections.abc import Iterator
from pathlib import Path

import yaml

log = logging.getLogger(__name__)

NAME = re.compile(r"^[\w-]{1,32}$")
MAX_TEXT = 4096  # what one Telegram message holds


class TemplateError(ValueError):
    pass


class Templates:
    def __init__(self, path: Path) -> None:
        self.path = path
        self._items: dict[str, str] = {}
        self._stamp: tuple[int, int] | None = None  # (mtime_ns, size) of what was read
        self.reload()  # a broken file at start-up is an error the operator must see

    def reload(self) -> None:
        """Read the file (no file: no templates). Raises TemplateError when it is unusable."""
        try:
            stat = self.path.stat()
        except FileNotFoundError:
            self._items, self._stamp = {}, None
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
        self._stamp = (stat.st_mtime_ns, stat.st_size)

    def _fresh(self) -> None:
        """Pick up changes made by another process or by hand; a file broken while running
        keeps the last good templates (the desk goes on working) and says so in the log."""
        try:
            stat = self.path.stat()
            stamp: tuple[int, int] | None = (stat.st_mtime_ns, stat.st_size)
        except FileNotFoundError:
            stamp = None
        if stamp == self._stamp:
            return
        try:
            self.reload()
        except TemplateError as exc:
            log.error("templates not reloaded, keeping the previous ones: %s", exc)
            self._stamp = stamp  # do not re-read (and re-log) a broken file on every call

    def names(self) -> list[str]:
        self._fresh()
        return sorted(self._items, key=str.casefold)

    def items(self) -> list[tuple[str, str]]:
        self._fresh()
        return sorted(self._items.items(), key=lambda item: item[0].casefold())

    def get(self, name: str) -> str | None:
        found = self.lookup(name)
        return found[1] if found else None

    def lookup(self, name: str) -> tuple[str, str] | None:
        """(stored name, text): exact name first, then ignoring case (`/t Bye` finds `bye`)."""
        self._fresh()
        if name in self._items:
            return name, self._items[name]
        wanted = name.casefold()
        return next(((key, text) for key, text in self._items.items()
                     if key.casefold() == wanted), None)

    def add(self, name: str, text: str) -> bool:
        """Add or replace `name`; True when it replaced an existing template."""
        if not NAME.match(name):
            raise TemplateError("имя шаблона — 1–32 буквы, цифры, _ или -")
        text = text.strip()
        if not text:
            raise TemplateError("у шаблона должен быть текст")
        if len(text) > MAX_TEXT:
            raise TemplateError(f"текст длиннее {MAX_TEXT} символов")
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with self._locked():
            self.reload()  # someone else may have added one since we last read
            existing = next((key for key in self._items if key.casefold() == name.casefold()),
                            name)
            replaced = existing in self._items
            items = {k: v for k, v in self._items.items() if k != existing}
            items[name] = text
            self._write(items)
            self.reload()
        return replaced

    def _write(self, items: dict[str, str]) -> None:
        mode = self.path.stat().st_mode & 0o777 if self.path.exists() else 0o644
        fd, tmp = tempfile.mkstemp(dir=self.path.parent, prefix=".templates-")
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as handle:
                yaml.safe_dump(items, handle, allow_unicode=True, sort_keys=True, width=100)
            os.chmod(tmp, mode)  # mkstemp makes it 0600; keep what the file had
            os.replace(tmp, self.path)
        except BaseException:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(tmp)
            raise

    @contextlib.contextmanager
    def _locked(self) -> Iterator[None]:
        lock = self.path.with_name(f".{self.path.name}.lock")
        with open(lock, "a", encoding="utf-8") as handle:
            fcntl.flock(handle, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(handle, fcntl.LOCK_UN)
