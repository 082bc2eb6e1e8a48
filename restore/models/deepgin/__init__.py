"""DeepGIN (Li, Siu, Liu, Wang, Lun, ECCV 2020 workshops, "DeepGIN: Deep Generative Inpainting Network
for Extreme Image Inpainting"; official code rlct1/gin).

A coarse stage (an encoder to 1/8 resolution, spatial-pyramid-dilation ResNet blocks whose
parallel 3×3 branches are dilated at rates 2, 3, 4, 5, 6, 8, 10 and 1, a bilinear decoder)
fills the holes roughly; a refinement stage, one level deeper, with SPD blocks at rates 2–5,
self-attention at three scales (1/16, 1/8 and 1/4 of the input side: 16², 32², 64² at 256²) and
back projection (a 1/4-resolution image whose residual against the down-sampled output is
added back with a learnt per-pixel weight) refines them. Replicate padding, LeakyReLU 0.2, no
normalisation. Two spectral-norm patch discriminators (full and half scale) judge the masked
input beside the completed image with the hinge loss; the generator also learns from L1 on its
three outputs (holes ×5), VGG-19 perceptual and style losses and total variation, after an
L1-only warm-up. Built for the AIM 2020 extreme-inpainting challenge: masks of every kind, large
images restored as polyphase 256² sub-images (``restore batch --strategy subsample``).
"""

from restore.models.deepgin.config import DeepGINConfig
from restore.models.deepgin.networks import DeepGINDiscriminator, DeepGINGenerator

__all__ = ["DeepGINConfig", "DeepGINDiscriminator", "DeepGINGenerator"]
