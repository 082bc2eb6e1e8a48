"""``--help`` is instant: no command's help imports torch, OpenCV or Dask (DESIGN §3)."""

from __future__ import annotations

import subprocess
import sys

import pytest

COMMANDS = ["", "ingest", "export", "masks generate", "batch", "eval", "train", "methods"]


@pytest.mark.parametrize("command", COMMANDS)
def test_help_imports_no_heavy_library(command: str) -> None:
    code = (
        "import sys\n"
        "from click.testing import CliRunner\n"
        "from restore.cli import main\n"
        f"result = CliRunner().invoke(main, {command.split()!r} + ['--help'])\n"
        "assert result.exit_code == 0, result.output\n"
        "print(sorted(m for m in ('torch', 'cv2', 'dask', 'distributed', 'zarr') if m in sys.modules))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]", f"restore {command} --help imports {out.strip()}"
