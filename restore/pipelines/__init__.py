"""Batch inference over image archives and training on Dask (DESIGN §2, §9).

DESIGN's ``pipelines/`` is this subpackage, ``restore.pipelines``.

- :mod:`restore.inference.pixels` — archive pixels (uint8/uint16; grey, RGB, RGBA) to the
  model's float RGB and back.
- :mod:`restore.inference.subsample` — polyphase split of large images into sub-images of at
  most the method's native size and their re-interleaving (DESIGN §8, DeepGIN), the default strategy.
- :mod:`restore.inference.tiles` — overlapping tiles of the native size with feathered
  blending (``--strategy tile``).
- :mod:`restore.inference.restoration` — restore a group of same-size images with one model,
  streaming sub-image / tile batches (the in-process engine every worker runs).
- :mod:`restore.pipelines.cluster` — the Dask client: an embedded ``LocalCluster`` or an
  existing cluster by address (shared by ``restore batch`` and ``restore train``).
- :mod:`restore.pipelines.batch_plan` — ``restore batch``'s validation and planning.
- :mod:`restore.pipelines.batch_worker` — what each worker holds (the model, loaded once)
  and the task it runs.
- :mod:`restore.pipelines.tiled_inference` — the ``restore batch`` run: one task per image
  (or per model batch of small images), writes by the client, resume, progress and failures.
- :mod:`restore.pipelines.distributed_training` — ``restore train --scheduler``: training
  ranks on Dask workers.

Every module here is import-safe (no torch or dask at import time): Dask workers are spawned.
"""
