"""Options and parsing shared by several commands."""

from __future__ import annotations

import dataclasses
import typing
from pathlib import Path
from typing import Any

import click


class MethodChoice(click.Choice):
    """``--method`` choices read from :data:`restore.models.registry.METHODS` when used (so methods
    registered at run time count), optionally only the trainable ones."""

    def __init__(self, trainable: bool = False) -> None:
        self.trainable = trainable
        super().__init__([])

    @property
    def choices(self) -> tuple[str, ...]:  # type: ignore[override]
        from restore.models.registry import METHODS

        return tuple(name for name, method in METHODS.items() if method.trainable or not self.trainable)

    @choices.setter
    def choices(self, value: object) -> None:  # click's __init__ assigns; the registry is the truth
        pass

    @staticmethod
    def summary(trainable: bool = False) -> str:
        """``csa (coherent semantic attention …), telea (…)`` for help texts, from the records."""
        from restore.models.registry import METHODS

        return ", ".join(f"{name} ({method.summary.split(':')[0].split(' (')[0]})"
                         for name, method in METHODS.items() if method.trainable or not trainable)


device_option = click.option(
    "--device",
    type=click.Choice(["auto", "cpu", "cuda"]),
    default="auto",
    show_default=True,
    help="Where models run; auto picks cuda when available.",
)


def resolve_device(device: str) -> str:
    """``auto`` -> ``cuda`` when available, else ``cpu``; ``cuda`` without a GPU is a usage error."""
    from restore.hardware import DeviceError
    from restore.hardware import resolve_device as resolve

    try:
        return resolve(device)
    except DeviceError as error:
        raise click.BadParameter(str(error), param_hint="'--device'") from None


def _convert(value: str, kind: Any, key: str) -> Any:
    origin = typing.get_origin(kind)
    if kind is bool or kind == "bool":
        lowered = value.strip().lower()
        if lowered in ("1", "true", "yes", "on"):
            return True
        if lowered in ("0", "false", "no", "off"):
            return False
        raise click.BadParameter(f"{key} expects true/false, got {value!r}", param_hint="'--set'")
    if origin is not None:
        raise click.BadParameter(f"{key} cannot be set from the command line", param_hint="'--set'")
    converter = {"int": int, "float": float, "str": str}.get(kind if isinstance(kind, str) else kind.__name__, None)
    if converter is None:
        raise click.BadParameter(f"{key} cannot be set from the command line", param_hint="'--set'")
    try:
        return converter(value)
    except ValueError:
        raise click.BadParameter(f"{key} expects {converter.__name__}, got {value!r}", param_hint="'--set'") from None


def config_overrides(config_cls: type, settings: tuple[str, ...], config_file: Path | None) -> dict[str, Any]:
    """Merge a TOML config file and ``--set KEY=VALUE`` items into overrides for a config dataclass.

    Keys must be fields of ``config_cls``; values are converted to the field's type.
    """
    fields = {f.name: f.type for f in dataclasses.fields(config_cls)}
    values: dict[str, Any] = {}
    if config_file is not None:
        import tomllib

        try:
            loaded = tomllib.loads(Path(config_file).read_text())
        except (OSError, tomllib.TOMLDecodeError) as error:
            raise click.BadParameter(f"cannot read {config_file}: {error}", param_hint="'--config'") from None
        unknown = set(loaded) - set(fields)
        if unknown:
            raise click.BadParameter(f"{config_file}: unknown keys {', '.join(sorted(unknown))}", param_hint="'--config'")
        values.update(loaded)
    for item in settings:
        key, sep, raw = item.partition("=")
        key = key.strip().replace("-", "_")
        if not sep:
            raise click.BadParameter(f"expected KEY=VALUE, got {item!r}", param_hint="'--set'")
        if key not in fields:
            raise click.BadParameter(f"unknown key {key!r}; known: {', '.join(fields)}", param_hint="'--set'")
        values[key] = _convert(raw, fields[key], key)
    return values
