"""DeepFill v1 (Yu et al., CVPR 2018, "Generative Image Inpainting with Contextual Attention").

A coarse network (two stride-2 down-samplings, dilated convolutions at rates 2, 4, 8, 16,
resize + convolution up-sampling, ELU) makes a first fill; a refinement network with two
branches — one dilated, one with contextual attention (:mod:`restore.nn.contextual_attention`),
which copies feature patches of the known background into the hole — merges and decodes it.
Trained with a spatially discounted L1 on both stages, an L1 on the known pixels, and WGAN-GP
from a global critic and a local critic on the hole's box, the gradient penalty masked to the
hole (:func:`restore.ops.masked_gradient_penalty`). Works whole at any size: the attention's
memory grows with the image's area, not its square.
"""

from restore.models.deepfill.config import DeepFillConfig
from restore.models.deepfill.networks import DeepFillGenerator

__all__ = ["DeepFillConfig", "DeepFillGenerator"]
