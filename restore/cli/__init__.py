"""The ``restore`` command: a click group whose commands load lazily.

Each command lives in its own module (``restore.cli.<name>``) and imports
torch, dask or zarr inside the command, so ``restore --help`` is fast and the
module is import-safe for spawned Dask workers.
"""

from __future__ import annotations

import importlib
import logging
import sys

import click

from restore import __version__
from restore.messages import one_line

#: command name -> "module:attribute"
COMMANDS: dict[str, str] = {
    "ingest": "restore.cli.ingest:ingest",
    "export": "restore.cli.export:export",
    "masks": "restore.cli.masks:masks",
    "batch": "restore.cli.batch:batch",
    "eval": "restore.cli.evaluate:evaluate",
    "train": "restore.cli.train:train",
    "methods": "restore.cli.methods:methods",
}


class LazyGroup(click.Group):
    """A group that imports a command's module only when that command runs."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted(set(COMMANDS) | set(self.commands))

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        if cmd_name in self.commands:
            return self.commands[cmd_name]
        target = COMMANDS.get(cmd_name)
        if target is None:
            return None
        module_name, attribute = target.split(":")
        return getattr(importlib.import_module(module_name), attribute)

    def invoke(self, ctx: click.Context):
        try:
            return super().invoke(ctx)
        except (click.exceptions.Exit, click.exceptions.Abort, click.ClickException):
            raise
        except KeyboardInterrupt:
            raise click.exceptions.Abort() from None
        except Exception as error:  # a failure of the run: one line, traceback only with -vv
            if ctx.obj and ctx.obj.get("verbosity", 0) >= 2:
                raise
            raise click.ClickException(one_line(f"{type(error).__name__}: {error}")) from error


@click.group(cls=LazyGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.option("-v", "--verbose", count=True, help="More output; -vv shows tracebacks.")
@click.option("-q", "--quiet", count=True, help="Less output.")
@click.version_option(__version__, prog_name="restore")
@click.pass_context
def main(ctx: click.Context, verbose: int, quiet: int) -> None:
    """Restore damaged photographs: fill holes in images stored in Zarr archives."""
    verbosity = verbose - quiet
    ctx.ensure_object(dict)
    ctx.obj["verbosity"] = verbosity
    level = logging.WARNING - 10 * verbosity
    logging.basicConfig(level=max(logging.DEBUG, min(logging.CRITICAL, level)), format="%(levelname)s %(name)s: %(message)s", stream=sys.stderr)


def verbosity(ctx: click.Context | None = None) -> int:
    """The ``-v``/``-q`` balance of the running command (0 when run outside the group)."""
    ctx = ctx or click.get_current_context(silent=True)
    while ctx is not None:
        if isinstance(ctx.obj, dict) and "verbosity" in ctx.obj:
            return int(ctx.obj["verbosity"])
        ctx = ctx.parent
    return 0
