"""Restoring images of any size with a model of a fixed native size, in one process (no Dask).

- :mod:`restore.inference.pixels` — archive pixels (uint8/uint16; grey, RGB, RGBA) to the
  model's float RGB and back.
- :mod:`restore.inference.subsample` — polyphase split of large images into sub-images of at
  most the method's native size and their re-interleaving (DESIGN §8, DeepGIN): the default strategy.
- :mod:`restore.inference.tiles` — overlapping tiles of the native size with feathered
  blending (``--strategy tile``).
- :mod:`restore.inference.restoration` — restore a group of same-size images with one model,
  streaming sub-image / tile batches: the engine every ``restore batch`` worker runs, and what
  the evaluation protocol uses for methods whose native size is under its 256².
- :mod:`restore.inference.poisson` — Poisson blending of a network's raw output into the
  hole (GLCIC's post-processing; ``restore batch --blend poisson``).

Every module here is import-safe (no torch at import time).
"""
