"""Batch inference over image archives (``restore batch``), DESIGN §9.

- :mod:`restore.pipelines.pixels` — archive pixels (uint8/uint16; grey, RGB, RGBA) to the
  model's float RGB and back.
- :mod:`restore.pipelines.subsample` — polyphase split of large images into sub-images of at
  most 256² and their re-interleaving (DESIGN §8, DeepGIN), the default strategy.
- :mod:`restore.pipelines.tiles` — overlapping 256² tiles with feathered blending
  (``--strategy tile``).
- :mod:`restore.pipelines.restoration` — restore a group of same-size images with one model,
  streaming sub-image / tile batches (the in-process engine every worker runs).
- :mod:`restore.pipelines.tiled_inference` — the Dask pipeline: validation, the cluster, the
  model loaded once per worker, one task per image (or per model batch of small images),
  writes by the client, resume, progress and failures.

Every module here is import-safe (no torch or dask at import time): Dask workers are spawned.
"""
