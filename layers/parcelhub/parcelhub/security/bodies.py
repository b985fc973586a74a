"""Bounds on request bodies, checked before any parser sees them (hostile bytes must not reach a
recursive parser: Python's ``json`` raises ``RecursionError`` past ~1,000 levels, a 500 on Lambda)."""

from __future__ import annotations

#: deeper than any body a carrier or the OMS sends (an order is 4 levels deep, a push about 6)
MAX_NESTING = 32


def nesting_depth(text: str) -> int:
    """The deepest nesting of ``{``/``[`` outside JSON strings, in one linear pass (no recursion)."""
    depth = deepest = 0
    in_string = escaped = False
    for char in text:
        if in_string:
            if escaped:
                escaped = False
            elif char == "\\":
                escaped = True
            elif char == '"':
                in_string = False
        elif char == '"':
            in_string = True
        elif char in "{[":
            depth += 1
            deepest = max(deepest, depth)
        elif char in "}]":
            depth = max(0, depth - 1)
    return deepest
