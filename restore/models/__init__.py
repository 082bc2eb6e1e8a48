"""Inpainting methods: one folder per method, each registered in :mod:`restore.models.registry`.

Shared by every method: :mod:`~restore.models.base` (the ``Inpainter`` contract),
:mod:`~restore.models.network` (one network behind it, loaded by its record),
:mod:`~restore.models.trainer` (the trainer contract and the GAN trainer base),
:mod:`~restore.models.config` (configs as plain data), :mod:`~restore.models.ensemble`
(geometric self-ensemble) and :mod:`~restore.models.classical` (the OpenCV baselines).
See ``docs/adding-a-method.md``.
"""
