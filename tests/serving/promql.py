"""The series selectors in a PromQL expression (``metric{label="value"}``), found by a small tokenizer: enough for
the expressions this project ships, so each selector can be asked of a real Prometheus on its own."""

from __future__ import annotations

import re

TOKEN = re.compile(
    r'(?P<string>"(?:[^"\\]|\\.)*")|(?P<range>\[[^\]]*\])|(?P<matchers>\{[^}]*\})'
    r"|(?P<number>\d+(?:\.\d+)?(?:[eE][-+]?\d+)?)|(?P<name>[a-zA-Z_:][a-zA-Z0-9_:]*)|(?P<other>\S)"
)
KEYWORDS = {"and", "or", "unless", "bool", "offset", "inf", "nan"}
# Aggregations may put `by (...)` between their name and their parenthesis.
AGGREGATIONS = {"sum", "min", "max", "avg", "group", "stddev", "stdvar", "count", "count_values", "bottomk", "topk", "quantile"}
LABEL_LISTS = {"by", "without", "on", "ignoring", "group_left", "group_right"}


def selectors(expr: str) -> list[str]:
    tokens = [(match.lastgroup, match.group()) for match in TOKEN.finditer(expr)]
    found: list[str] = []
    position = 0
    while position < len(tokens):
        kind, text = tokens[position]
        following = tokens[position + 1] if position + 1 < len(tokens) else (None, "")
        if kind == "name" and text in LABEL_LISTS:
            if following[1] == "(":  # skip the label names up to the closing parenthesis
                position = next(i for i in range(position, len(tokens)) if tokens[i][1] == ")")
        elif kind == "name" and text.lower() not in KEYWORDS | AGGREGATIONS and following[1] != "(":
            found.append(text + (following[1] if following[0] == "matchers" else ""))
        position += 1
    return list(dict.fromkeys(found))
