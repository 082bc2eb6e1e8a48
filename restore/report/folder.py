"""The report folder: built under a temporary name beside it, moved into place only when complete.

A report writes only the entries of :data:`REPORT_ENTRIES`; anything else in the folder is
the user's and is never touched. An existing report (any of those entries) is kept unless
``overwrite``; then every one of them is replaced, so no file of an older report is left
beside the new one. A failed run leaves the folder as it was; the temporary folder of a
killed run (SIGKILL, SIGTERM) is deleted by the next run for the same folder.
"""

from __future__ import annotations

import contextlib
import os
import shutil
from collections.abc import Iterator
from pathlib import Path

from restore.data._zarr_store import temp_dir_for
from restore.data.ingest import remove_stale_temp_dirs

#: Everything ``restore eval --report`` may write into the folder.
REPORT_ENTRIES = ("index.html", "data.js", "assets", "images", "metrics.json", "metrics.md", "per_image.csv")


class ReportFolderError(ValueError):
    """A report folder that may not be written; ``str()`` is one line naming the path."""


def existing_entries(dest: Path) -> list[Path]:
    """The report entries already in ``dest``, in :data:`REPORT_ENTRIES` order."""
    return [dest / name for name in REPORT_ENTRIES if (dest / name).exists() or (dest / name).is_symlink()]


def check_report_folder(dest: Path, overwrite: bool) -> None:
    """Whether a report may be written into ``dest``.

    Raises:
        ReportFolderError: ``dest`` is a file, or holds a report and ``overwrite`` is false.
    """
    dest = Path(dest)
    if (dest.exists() or dest.is_symlink()) and not dest.is_dir():
        raise ReportFolderError(f"{dest}: exists and is not a folder")
    found = existing_entries(dest) if dest.is_dir() else []
    if found and not overwrite:
        raise ReportFolderError(f"{found[0]}: exists (--overwrite replaces it)")


@contextlib.contextmanager
def staged_report(dest: str | os.PathLike, *, overwrite: bool = False) -> Iterator[Path]:
    """Build a report in a temporary folder beside ``dest``; move it into place when the block succeeds.

    Args:
        dest: The report folder (created when missing; other files in it are kept).
        overwrite: Replace an existing report's entries.

    Yields:
        The temporary folder to fill (same file system as ``dest``: the moves are renames).

    Raises:
        ReportFolderError: see :func:`check_report_folder` (checked before and after building).
    """
    dest = Path(dest)
    check_report_folder(dest, overwrite)
    dest.parent.mkdir(parents=True, exist_ok=True)
    remove_stale_temp_dirs(dest)
    tmp = temp_dir_for(dest)
    if tmp.exists():  # left by a killed process that had our pid
        shutil.rmtree(tmp)
    tmp.mkdir()
    try:
        yield tmp
        check_report_folder(dest, overwrite)
        if not dest.exists():
            os.replace(tmp, dest)
            return
        old = tmp / ".replaced"
        old.mkdir()
        for entry in existing_entries(dest):
            os.replace(entry, old / entry.name)
        for entry in sorted(tmp.iterdir()):
            if entry != old:
                os.replace(entry, dest / entry.name)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
