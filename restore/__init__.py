"""restore: batch image inpainting over Zarr archives.

Importing the package is cheap: torch, dask and zarr are imported by the
modules that need them.
"""

from __future__ import annotations

__version__ = "0.1.0"
__all__ = ["__version__"]
