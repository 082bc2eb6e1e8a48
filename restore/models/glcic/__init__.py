"""GLCIC (Iizuka, Simo-Serra, Ishikawa, SIGGRAPH 2017, "Globally and Locally Consistent Image Completion").

A completion network of 17 convolutions (two stride-2 down-samplings, dilated convolutions at
rates 2, 4, 8, 16, two deconvolutions back up, batch norm and ReLU, a sigmoid output) fills
holes painted with the training set's mean colour. Two discriminators judge its composite: a
global one on the whole image and a local one on a fixed window centred on the hole; their
1024-d features are joined into one real/fake decision. Training runs in three phases by
step: the completion network alone on the hole's squared error, the discriminators alone,
then both. Two configurations: the paper's 256² network for photographs (the default) and the
CIFAR-scale reproduction's 32² one (``cifar32.toml`` beside this file).
"""

from restore.models.glcic.config import GLCICConfig
from restore.models.glcic.networks import CompletionNetwork, GLCICDiscriminator

__all__ = ["CompletionNetwork", "GLCICConfig", "GLCICDiscriminator"]
