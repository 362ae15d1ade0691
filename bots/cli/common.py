"""What every CLI command shares: the console, settings that fail in one line, exit codes."""

from __future__ import annotations

import logging

import typer
from rich.console import Console

from bots.settings import Settings, SettingsError, load_settings

console = Console()
err_console = Console(stderr=True)

EXIT_DATA_ERROR = 1
EXIT_ENVIRONMENT = 1  # the machine, not the configuration: a port in use, a missing file
EXIT_CONFIG_ERROR = 2


def settings_or_exit() -> Settings:
    """The settings, or one red line naming the bad variable and exit code 2 (no traceback)."""
    try:
        return load_settings()
    except SettingsError as exc:
        err_console.print(f"[red]configuration error:[/red] {exc}", highlight=False,
                          soft_wrap=True)
        raise typer.Exit(EXIT_CONFIG_ERROR) from None


def setup_logging(level: str, settings: Settings | None = None) -> None:
    """Log to stderr; with `settings`, every secret of them is masked in what is logged."""
    logging.basicConfig(
        level=level,
        format="%(asctime)s %(levelname)-7s %(name)s: %(message)s",
    )
    if settings is not None:
        from bots.redact import install_settings_redaction

        install_settings_redaction(settings)
