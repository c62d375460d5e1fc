"""Untrusted text made safe to print: one escaping for logs, commit messages and ``history`` output alike."""

from __future__ import annotations

import logging


def escape_control(text: object) -> str:
    """``text`` with every non-printable character (newlines, carriage returns, ANSI escape ``\\x1b``, other C0/C1
    controls, bidirectional overrides, line separators) written as a Python escape (``\\n``, ``\\x1b``, ``\\u202e``),
    so a value can neither forge a log line or a commit trailer nor send escape sequences to a terminal. A
    backslash is doubled only where the text needed escaping, so printable text comes back as it was."""
    text = str(text)
    if text.isprintable():
        return text
    return "".join(char if char.isprintable() else repr(char)[1:-1] for char in text.replace("\\", "\\\\"))


class EscapingFormatter(logging.Formatter):
    """Log lines whose message (with its arguments: catalog fields, item ids, reasons) is escaped: one record, one
    line. A traceback the logging call attaches is ours and stays as it is."""

    def formatMessage(self, record: logging.LogRecord) -> str:
        record.message = escape_control(record.message)
        return super().formatMessage(record)
