"""Helpers for the one-line error messages every command gives."""

from __future__ import annotations

from collections.abc import Sequence

#: How many keys a message names before saying "and N more".
PREVIEW = 8


def one_line(text: object) -> str:
    """``text`` with all whitespace runs collapsed (messages are one line)."""
    return " ".join(str(text).split())


def unreadable_torch_file(error: BaseException) -> str:
    """Why ``torch.load(..., weights_only=True)`` could not read a file, in one line."""
    import pickle

    if isinstance(error, pickle.UnpicklingError):  # torch's own text is a page about weights_only
        return "not a PyTorch file of tensors and plain data"
    if isinstance(error, EOFError):
        return "empty or truncated file"
    if isinstance(error, KeyError):  # the legacy (non-zip) loader read a first byte that is no pickle opcode
        return "not a PyTorch file"
    if "PytorchStreamReader" in str(error):  # a damaged zip: torch adds a paragraph of advice
        return f"not a PyTorch file, or a damaged one ({str(error).split('.')[0].removeprefix('PytorchStreamReader ')})"
    return one_line(error) or type(error).__name__


def preview(keys: Sequence[str], limit: int = PREVIEW) -> str:
    """``'a', 'b' and 3 more`` for messages."""
    shown = ", ".join(repr(key) for key in keys[:limit])
    return shown + (f" and {len(keys) - limit} more" if len(keys) > limit else "")


def megapixels(pixels: int) -> str:
    """A pixel count for messages: ``16777216`` → ``4096² (16.8 MP)``, ``1500000`` → ``1.5 MP``."""
    side = round(pixels**0.5)
    return f"{side}² ({pixels / 1e6:.3g} MP)" if side * side == pixels else f"{pixels / 1e6:.3g} MP"
