"""An overlay's rollout records, kept beside its ``kustomization.yaml`` in the GitOps repo.

    pin.yaml        present while the overlay is pinned: the version, why, who, when. Bumps leave it alone.
    reverted.yaml   every version a rollback reverted: never deployed again automatically.

Neither file is a Kubernetes resource (the kustomization does not list them): they are for the tools.
"""

from __future__ import annotations

import getpass
import socket
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import yaml

from imagesearch.errors import ImageSearchError
from imagesearch.text import escape_control

PIN_FILE = "pin.yaml"
REVERTED_FILE = "reverted.yaml"
HEADER = "# Written by `python -m tasks.operations.rollback`; read by every bump. Not a Kubernetes resource.\n"


class PinError(ImageSearchError):
    """A pin or reverted-versions file is unreadable, or a pin request is incomplete."""


def operator() -> str:
    """Who is acting, for the record: the login and host of the person running the command."""
    return f"{getpass.getuser()}@{socket.gethostname()}"


def now() -> str:
    return datetime.now(UTC).replace(microsecond=0).isoformat()


@dataclass(frozen=True)
class Pin:
    version: str
    reason: str
    by: str
    at: str

    def describe(self) -> str:
        return f"pinned to {self.version} by {escape_control(self.by)} at {escape_control(self.at)}: " \
            f"{escape_control(self.reason)}"


@dataclass(frozen=True)
class Reverted:
    version: str
    reason: str
    by: str
    at: str

    def describe(self) -> str:
        return f"{self.version} by {escape_control(self.by)} at {escape_control(self.at)}: {escape_control(self.reason)}"


def _load(path: Path, expected: type) -> Any:
    try:
        value = yaml.safe_load(path.read_text())
    except (OSError, yaml.YAMLError) as exc:
        raise PinError(f"cannot read {path.name}: {exc}") from None
    if not isinstance(value, expected):
        raise PinError(f"{path.name} does not hold a {expected.__name__}")
    return value


def _record(kind: type, value: Any, source: str) -> Any:
    names = ("version", "reason", "by", "at")
    if not isinstance(value, dict) or any(not isinstance(value.get(name), str) for name in names):
        raise PinError(f"{source}: every entry needs the strings {', '.join(names)}")
    return kind(**{name: value[name] for name in names})


def parse_pin(text: str) -> Pin:
    try:
        return _record(Pin, yaml.safe_load(text), PIN_FILE)
    except yaml.YAMLError as exc:
        raise PinError(f"cannot read {PIN_FILE}: {exc}") from None


def read_pin(overlay: Path) -> Pin | None:
    path = overlay / PIN_FILE
    return _record(Pin, _load(path, dict), PIN_FILE) if path.is_file() else None


def pin_text(pin: Pin) -> str:
    """``pin.yaml``'s text; a pin without a reason is refused."""
    if not pin.reason.strip():
        raise PinError("a pin needs a reason (--reason): it is what the next run and the next person will read")
    return HEADER + yaml.safe_dump(asdict(pin), sort_keys=False)


def write_pin(overlay: Path, pin: Pin) -> Path:
    path = overlay / PIN_FILE
    path.write_text(pin_text(pin))
    return path


def parse_reverted(text: str) -> dict[str, Reverted]:
    try:
        value = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise PinError(f"cannot read {REVERTED_FILE}: {exc}") from None
    if not isinstance(value, list):
        raise PinError(f"{REVERTED_FILE} does not hold a list")
    entries = [_record(Reverted, entry, REVERTED_FILE) for entry in value]
    return {entry.version: entry for entry in entries}


def read_reverted(overlay: Path) -> dict[str, Reverted]:
    path = overlay / REVERTED_FILE
    if not path.is_file():
        return {}
    entries = [_record(Reverted, entry, REVERTED_FILE) for entry in _load(path, list)]
    return {entry.version: entry for entry in entries}


def reverted_text(known: dict[str, Reverted], entries: list[Reverted], restored: str = "") -> str:
    """``reverted.yaml``'s text: ``known`` and ``entries``, less ``restored`` (the version rolled back to)."""
    known = {**known, **{entry.version: entry for entry in entries}}
    known.pop(restored, None)
    return HEADER + yaml.safe_dump([asdict(entry) for entry in known.values()], sort_keys=False)


def add_reverted(overlay: Path, entries: list[Reverted], restored: str = "") -> Path:
    """Record ``entries`` as reverted; ``restored`` (the version rolled back to) is no longer one."""
    path = overlay / REVERTED_FILE
    path.write_text(reverted_text(read_reverted(overlay), entries, restored))
    return path
