"""CSA: coherent semantic attention for image inpainting (Liu et al., ICCV 2019).

``config`` holds the paper's hyper-parameters, ``networks`` the rough and refinement
generators, ``inpainter`` the :class:`~restore.models.base.Inpainter`, ``trainer`` the
losses on the shared GAN trainer. Its record is ``METHODS["csa"]`` in
:mod:`restore.models.registry`.
"""

from restore.models.csa.config import CSAConfig
from restore.models.csa.inpainter import CSAInpainter, load_csa_inpainter

__all__ = ["CSAConfig", "CSAInpainter", "load_csa_inpainter"]
