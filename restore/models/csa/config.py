"""CSA hyper-parameters, the paper's values as defaults."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class CSAConfig:
    """Architecture, loss weights and optimiser of CSA.

    Attributes:
        width: channels of the first layer (paper: 64); deeper layers double it.
        max_channels: cap on any layer's channels (paper: 512 = 8 × width).
        depth: down-samplings of each U-Net (paper: 8, down to 1×1 for 256² input); input
            sides are padded to multiples of ``2**depth``. The CSA layer sits after the third.
        prefill: feed the networks a push-pull fill of the holes and let each stage
            predict a residual over its input (our addition for faster training;
            False gives the paper's plain masked input).
        discriminator_width: first-layer channels of the patch discriminator (paper: 64).
        feature_discriminator_width: channels of the feature-patch discriminator (paper: 512).
        l1_weight: λr, L1 reconstruction weight on both stages.
        hole_l1_weight: relative weight of hole pixels in that L1 and in the L2 (paper: 1, every
            pixel alike).
        l2_weight: mean squared error weight on both stages (our addition; paper: 0). PSNR
            measures this error: a fine-tune with it in place of L1 moves the fill from the
            median towards the mean of what the hole may hold.
        consistency_weight: λc, consistency loss weight (VGG-16 relu4_3).
        adversarial_weight: λd, relativistic-average LSGAN weight.
        feature_discriminator: use the VGG feature-patch discriminator as well.
        adversarial_in_hole: score the discriminators' patches that see the hole only (our
            addition; paper: every patch). A patch of known pixels is the same in the real
            and the composited image, so averaging over it only dilutes both sides' losses.
        lr, beta1, beta2: Adam.
        ema_decay: keep an exponential moving average of the generator's weights with this
            decay (our addition; 0 disables it); the average is what is evaluated and shipped.
    """

    width: int = 64
    max_channels: int = 512
    depth: int = 8
    prefill: bool = True
    discriminator_width: int = 64
    feature_discriminator_width: int = 512
    l1_weight: float = 1.0
    hole_l1_weight: float = 1.0
    l2_weight: float = 0.0
    consistency_weight: float = 0.01
    adversarial_weight: float = 0.002
    feature_discriminator: bool = True
    adversarial_in_hole: bool = False
    lr: float = 2e-4
    beta1: float = 0.5
    beta2: float = 0.999
    ema_decay: float = 0.999

    def __post_init__(self) -> None:
        if not 4 <= self.depth <= 10:
            raise ValueError(f"CSAConfig.depth must be in [4, 10] (the CSA layer sits at the third), got {self.depth}")
        for name in ("width", "max_channels", "discriminator_width", "feature_discriminator_width"):
            if getattr(self, name) < 1:
                raise ValueError(f"CSAConfig.{name} must be >= 1, got {getattr(self, name)}")
        if not 0.0 <= self.ema_decay < 1.0:
            raise ValueError(f"CSAConfig.ema_decay must be in [0, 1), got {self.ema_decay}")
        for name in ("l1_weight", "hole_l1_weight", "l2_weight", "consistency_weight", "adversarial_weight"):
            if getattr(self, name) < 0:
                raise ValueError(f"CSAConfig.{name} must be >= 0, got {getattr(self, name)}")

    @property
    def multiple(self) -> int:
        """Input sides must be multiples of this."""
        return 2**self.depth

    @property
    def needs_vgg(self) -> bool:
        """Whether training needs VGG-16 (consistency loss or feature discriminator)."""
        uses_feature_d = self.feature_discriminator and self.adversarial_weight > 0
        return self.consistency_weight > 0 or uses_feature_d
