"""``restore methods``: the methods, what each needs and how ``restore batch`` treats large images."""

from __future__ import annotations

import click


@click.command()
def methods() -> None:
    """List the inpainting methods: weights, whether `restore train` can train them, native size, default strategy."""
    from rich.console import Console
    from rich.table import Table

    from restore.messages import megapixels
    from restore.models.registry import METHODS

    table = Table("method", "weights", "trainable", "native size", "large images", "description")
    for method in METHODS.values():
        if not method.needs_weights:
            weights = "not needed"
        elif method.shipped_checkpoint is not None:
            weights = f"shipped ({method.shipped_checkpoint.name}" + "".join(f"; {p.stem}" for p in method.shipped_variants) + ")"
        elif method.shipped_variants:
            weights = "--checkpoint " + " or ".join(p.stem for p in method.shipped_variants) + " (shipped), or a file"
        else:
            weights = "none shipped (--checkpoint)"
        size = f"{method.native_size}²" if method.native_size else "any"
        large = method.default_strategy
        if method.max_pixels is not None:
            large += f", at most {megapixels(method.max_pixels)} unless --allow-large"
        table.add_row(method.name, weights, "yes" if method.trainable else "no", size, large, method.summary)
    Console(width=200).print(table)
