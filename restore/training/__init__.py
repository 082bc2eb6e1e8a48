"""Training: the loop (:mod:`~restore.training.loop`), one run as every process runs it
(:mod:`~restore.training.job`), local data-parallel launch (:mod:`~restore.training.launch`),
process groups (:mod:`~restore.training.distributed`), shipping (:mod:`~restore.training.ship`)
and model cards (:mod:`~restore.training.model_card`).

The trainer contract and the GAN trainer base are :mod:`restore.models.trainer` (below this
package: each method's trainer lives in its folder under ``restore/models/``); checkpoints
are :mod:`restore.checkpoint`; training ranks on Dask are :mod:`restore.pipelines.distributed_training`.
"""
