"""Semantic inpainting by latent optimisation of an improved WGAN (Vitoria, Sintes, Ballester, VISAPP 2019).

No network maps a damaged image to a restored one. A generative model of whole images is
trained once, on unmasked photos: Gulrajani et al.'s 64² ResNet WGAN-GP (batch norm in the
generator, layer norm in the critic, z of 128 dimensions from N(0, 1)). An image is then
inpainted by searching the generator's latent space (:mod:`restore.models.wgan.search`) for
the sample that agrees best with the known pixels near the hole — in value and in gradient —
while the critic keeps it realistic; the sample is pasted into the hole (and, by default,
Poisson-blended: ``restore batch --blend poisson``).
"""

from restore.models.wgan.config import WGANConfig
from restore.models.wgan.networks import WGANCritic, WGANGenerator

__all__ = ["WGANConfig", "WGANCritic", "WGANGenerator"]
