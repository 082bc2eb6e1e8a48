"""The demo never deletes a folder it did not write."""

from __future__ import annotations

from pathlib import Path

from click.testing import CliRunner

from restore.demo import main


def test_demo_refuses_a_folder_that_is_not_an_earlier_demo(tmp_path: Path) -> None:
    precious = tmp_path / "photos"
    precious.mkdir()
    (precious / "holiday.jpg").write_bytes(b"not ours to delete")
    result = CliRunner().invoke(main, ["--out", str(precious)])
    assert result.exit_code == 1
    assert "is not a demo folder" in result.output and str(precious) in result.output
    assert (precious / "holiday.jpg").read_bytes() == b"not ours to delete"
