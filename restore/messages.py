"""Helpers for the one-line error messages every command gives."""

from __future__ import annotations

from collections.abc import Sequence

#: How many keys a message names before saying "and N more".
PREVIEW = 8


def one_line(text: object) -> str:
    """``text`` with all whitespace runs collapsed (messages are one line)."""
    return " ".join(str(text).split())


def preview(keys: Sequence[str], limit: int = PREVIEW) -> str:
    """``'a', 'b' and 3 more`` for messages."""
    shown = ", ".join(repr(key) for key in keys[:limit])
    return shown + (f" and {len(keys) - limit} more" if len(keys) > limit else "")
