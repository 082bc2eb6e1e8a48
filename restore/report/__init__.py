"""The HTML report of ``restore eval --report``: thumbnails, the page, its data, its folder.

Modules, one concern each (none imports torch):

- :mod:`~restore.report.thumbnails` — small JPEG pictures and the hole-outline overlays.
- :mod:`~restore.report.builder` — :class:`~restore.report.builder.ReportBuilder`, fed one
  image at a time while ``restore eval`` streams the archives; writes the data file.
- :mod:`~restore.report.page` — ``index.html`` (the metrics tables, rendered statically) and
  the page's script and style sheet (package data in ``static/``).
- :mod:`~restore.report.folder` — the report folder: built under a temporary name, moved into
  place only when complete, an existing report kept unless ``--overwrite``.

The report opens from disk with no network: every picture is a file beside
``index.html``; the data are a script (``data.js``), since browsers refuse ``fetch`` on
``file://`` pages.
"""
