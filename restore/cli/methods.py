"""``restore methods``: the methods and whether each has weights."""

from __future__ import annotations

import click


@click.command()
def methods() -> None:
    """List the inpainting methods and whether each has weights."""
    from rich.console import Console
    from rich.table import Table

    from restore.models.registry import METHODS

    table = Table("method", "weights", "trainable", "description")
    for method in METHODS.values():
        if not method.needs_weights:
            weights = "not needed"
        elif method.shipped_checkpoint is not None:
            weights = f"shipped ({method.shipped_checkpoint.name})"
        else:
            weights = "none shipped (--checkpoint)"
        table.add_row(method.name, weights, "yes" if method.trainable else "no", method.summary)
    Console(width=200).print(table)
