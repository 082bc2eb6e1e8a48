"""Method configs as plain data: every method's config is a frozen dataclass (DESIGN §3).

No base class and no inheritance: these functions are all the generic code needs
(checkpoints store ``config_to_dict``; ``config_from_dict`` rebuilds and rejects unknown
keys, so a typo in a TOML file or a checkpoint of another version is an error, not a default;
``saved_config`` gives a checkpoint written before a field existed the value its run used).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Any

__all__ = ["config_from_dict", "config_to_dict", "saved_config"]


def config_to_dict(config: Any) -> dict[str, Any]:
    """A config dataclass as a plain dict (what checkpoints store)."""
    return dataclasses.asdict(config)


def config_from_dict(config_class: type, values: Mapping[str, Any]) -> Any:
    """Build a config dataclass from a dict (a checkpoint's, a TOML file's), rejecting unknown keys."""
    known = {f.name for f in dataclasses.fields(config_class)}
    unknown = set(values) - known
    if unknown:
        raise ValueError(f"unknown {config_class.__name__} keys: {', '.join(sorted(unknown))}")
    return config_class(**values)


def saved_config(config_class: type, values: Mapping[str, Any]) -> dict[str, Any]:
    """A checkpoint's configuration dict, completed for fields added after it was written.

    A config class lists such fields in ``FIELDS_ADDED`` (a ClassVar dict) with the value that
    runs before them trained with, which may differ from today's default: an old run resumed
    or restored keeps its own behaviour.
    """
    added = getattr(config_class, "FIELDS_ADDED", {})
    return {**{key: value for key, value in added.items() if key not in values}, **values}
