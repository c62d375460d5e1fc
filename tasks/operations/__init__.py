"""The operators' CLIs: rollback and pins, promotion between environments, the whole pipeline on one machine."""

from __future__ import annotations

import sys
from collections.abc import Callable

from imagesearch.errors import ImageSearchError
from imagesearch.settings import Settings, SettingsError, get_settings


def command_settings(program: str) -> Settings | None:
    """The settings, or None after saying on stderr why they are unusable."""
    try:
        return get_settings()
    except SettingsError as exc:
        print(f"{program}: {exc}", file=sys.stderr)
        return None


def run_command(command: str, action: Callable[[], None]) -> int:
    """Run a subcommand: 0, or 1 after one line on stderr saying why it failed (no traceback)."""
    try:
        action()
    except (ImageSearchError, OSError, ValueError) as exc:
        print(f"{command} failed: {exc}", file=sys.stderr)
        return 1
    return 0
