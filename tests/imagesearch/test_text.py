"""Untrusted text escaped before it is printed: no forged log lines, no terminal escape sequences."""

from __future__ import annotations

import io
import logging

import pytest

from imagesearch.text import EscapingFormatter, escape_control


@pytest.mark.parametrize(("raw", "shown"), [
    ("plain text, café", "plain text, café"),
    ("a\nINFO forged line", "a\\nINFO forged line"),
    ("\x1b[2J\x1b[31mred", "\\x1b[2J\\x1b[31mred"),
    ("cr\roverwrite", "cr\\roverwrite"),
    ("bidi \u202eevil", "bidi \\u202eevil"),
    ("line\u2028separator", "line\\u2028separator"),
    ("c1 \x9b control", "c1 \\x9b control"),
    ("back\\slash\n", "back\\\\slash\\n"),  # escaped text stays unambiguous
    ("back\\slash", "back\\slash"),  # printable text comes back unchanged
])
def test_control_characters_are_escaped(raw: str, shown: str) -> None:
    assert escape_control(raw) == shown and escape_control(raw).isprintable()


def test_a_log_record_with_a_newline_stays_one_line() -> None:
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(EscapingFormatter("%(levelname)s %(message)s"))
    logger = logging.getLogger("test_text")
    logger.addHandler(handler)
    try:
        logger.warning("skipping %s: %s", "item\nERROR forged", "\x1b[31mred")
    finally:
        logger.removeHandler(handler)
    assert stream.getvalue() == "WARNING skipping item\\nERROR forged: \\x1b[31mred\n"
