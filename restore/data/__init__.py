"""Data: Zarr archives, image I/O, hole masks (loading and generators), training datasets."""
