"""DeepFill v1 hyper-parameters: the paper's and its reference code's values as defaults."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class DeepFillConfig:
    """Architecture, losses and optimiser of DeepFill v1.

    Attributes:
        width: channels of the first layer (paper: cnum = 32); the networks use 1, 2 and 4 times it.
        softmax_scale: contextual attention's inverse temperature (paper: 10).
        attention_rate: keys taken from the 1/4-resolution map down-scaled by this, pasted
            back as ``2·rate``-sided patches (paper: 2).
        fuse: contextual attention's 3×3 score propagation (paper: on).
        critic_width: first-layer channels of both critics (paper: 64; local 64-128-256-512,
            global 64-128-256-256).
        local_size: side of the local critic's window around the hole (paper: 128 in 256²).
        global_size: side the global critic takes (its linear layer's size; paper: 256). Training
            crops of another side are resized to it for the global critic.
        discount_gamma: spatial discount γ of the hole L1, γ^distance to the nearest known pixel
            (paper: 0.99; the authors' code: 0.9, measured to the box border).
        coarse_weight: weight of the coarse stage inside the L1 terms (code: 1.2).
        l1_weight: the discounted hole L1 (code: 1.2).
        known_weight: the L1 on known pixels ("auto-encoder" loss; code: 1.2).
        adversarial_weight: WGAN weight in the generator's loss (code: 0.001).
        global_weight: the global critic's weight beside the local one's (code: 1).
        penalty_weight: λ of the gradient penalty masked to the hole (paper: 10).
        pretrain_steps: first steps that train the generator alone on the L1 terms (the
            reference code's ``pretrain``; 0: adversarial from the start).
        lr, beta1, beta2: Adam for the generator and the critics (paper: 1e-4, 0.5, 0.9).
        ema_decay: exponential moving average of the generator's weights (our addition; 0: none).
    """

    width: int = 32
    softmax_scale: float = 10.0
    attention_rate: int = 2
    fuse: bool = True
    critic_width: int = 64
    local_size: int = 128
    global_size: int = 256
    discount_gamma: float = 0.99
    coarse_weight: float = 1.2
    l1_weight: float = 1.2
    known_weight: float = 1.2
    adversarial_weight: float = 0.001
    global_weight: float = 1.0
    penalty_weight: float = 10.0
    pretrain_steps: int = 0
    lr: float = 1e-4
    beta1: float = 0.5
    beta2: float = 0.9
    ema_decay: float = 0.999

    def __post_init__(self) -> None:
        for name in ("width", "critic_width", "local_size", "global_size"):
            if getattr(self, name) < 2:
                raise ValueError(f"DeepFillConfig.{name} must be >= 2, got {getattr(self, name)}")
        if self.attention_rate < 2 or self.attention_rate % 2:
            raise ValueError(f"DeepFillConfig.attention_rate must be even and >= 2, got {self.attention_rate}")
        if not 0.0 < self.discount_gamma <= 1.0:
            raise ValueError(f"DeepFillConfig.discount_gamma must be in (0, 1], got {self.discount_gamma}")
        if not 0.0 <= self.ema_decay < 1.0:
            raise ValueError(f"DeepFillConfig.ema_decay must be in [0, 1), got {self.ema_decay}")
        for name in ("coarse_weight", "l1_weight", "known_weight", "adversarial_weight", "global_weight", "penalty_weight", "pretrain_steps"):
            if getattr(self, name) < 0:
                raise ValueError(f"DeepFillConfig.{name} must be >= 0, got {getattr(self, name)}")

    @property
    def multiple(self) -> int:
        """Input sides must be multiples of this: two stride-2 convolutions, then the attention's rate."""
        return 4 * self.attention_rate

    @property
    def min_training_size(self) -> int:
        """Training crops must be at least this side: the local critic's window lies inside them."""
        return self.local_size
