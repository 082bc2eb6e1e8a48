"""The improved WGAN's and the latent search's hyper-parameters (Vitoria et al. §3–4; Gulrajani et al.)."""

from __future__ import annotations

from dataclasses import dataclass

#: Config keys ``restore batch --set`` may change at inference: the latent search's settings.
SEARCH_SETTINGS: tuple[str, ...] = ("search_steps", "restarts", "search_lr", "alpha", "beta", "eta", "z_clip", "window", "seed")


@dataclass(frozen=True)
class WGANConfig:
    """Networks, WGAN-GP training and the latent search.

    Attributes:
        width: the generator's last and the critic's first channel count (Gulrajani's ``DIM``: 64);
            the networks use 1, 2, 4 and 8 times it.
        latent: dimensions of z (paper: 128), drawn from N(0, 1) in training.
        size: the side of the images the generator makes and the critic judges (paper: 64;
            a power of two from 8 up: one up-sampling block per doubling above 4).
        penalty_weight: λ of the (unmasked) gradient penalty (paper: 10).
        lr, beta1, beta2: Adam for both networks (paper: 1e-4, (0.0, 0.9)).
        ema_decay: moving average of the generator (our addition; 0: none), with batch-norm
            statistics of its own.
        search_steps: Adam steps of the latent search (paper: 1000).
        restarts: random starts per image; the one with the lowest final loss is kept (paper: 1).
        search_lr: the search's Adam learning rate (paper: 0.03; moments 0.9, 0.999).
        alpha, beta, eta: weights of the contextual, gradient and prior losses (paper: 0.1, 0.9, 0.5).
        z_clip: z is clipped to [−z_clip, z_clip] after every step (paper: 1; 0 = no clipping).
        window: side of the hole-proximity window of the contextual weights (paper: 7).
        seed: seeds the search's starting points (the same for every image: results do not
            depend on an image's batch-mates).
    """

    width: int = 64
    latent: int = 128
    size: int = 64
    penalty_weight: float = 10.0
    lr: float = 1e-4
    beta1: float = 0.0
    beta2: float = 0.9
    ema_decay: float = 0.999
    search_steps: int = 1000
    restarts: int = 4
    search_lr: float = 0.03
    alpha: float = 0.1
    beta: float = 0.9
    eta: float = 0.5
    z_clip: float = 1.0
    window: int = 7
    seed: int = 0

    def __post_init__(self) -> None:
        for name in ("width", "latent"):
            if getattr(self, name) < 1:
                raise ValueError(f"WGANConfig.{name} must be >= 1, got {getattr(self, name)}")
        if self.size < 8 or self.size & (self.size - 1):
            raise ValueError(f"WGANConfig.size must be a power of two >= 8, got {self.size}")
        for name in ("penalty_weight", "lr", "search_lr", "alpha", "beta", "eta", "z_clip"):
            if getattr(self, name) < 0:
                raise ValueError(f"WGANConfig.{name} must be >= 0, got {getattr(self, name)}")
        if self.search_steps < 0:
            raise ValueError(f"WGANConfig.search_steps must be >= 0, got {self.search_steps}")
        if self.restarts < 1:
            raise ValueError(f"WGANConfig.restarts must be >= 1, got {self.restarts}")
        if self.window < 1 or self.window % 2 == 0:
            raise ValueError(f"WGANConfig.window must be an odd side >= 1, got {self.window}")
        if not 0.0 <= self.ema_decay < 1.0:
            raise ValueError(f"WGANConfig.ema_decay must be in [0, 1), got {self.ema_decay}")
        for name in ("beta1", "beta2"):
            if not 0.0 <= getattr(self, name) < 1.0:
                raise ValueError(f"WGANConfig.{name} must be in [0, 1), got {getattr(self, name)}")

    @property
    def multiple(self) -> int:
        """Any input size works: images are resized to ``size``² for the search."""
        return 1

    @property
    def min_training_size(self) -> int:
        """Training crops are the generator's own size."""
        return self.size

    @property
    def training_masks(self) -> tuple[str, ...]:
        """The WGAN trains on whole images; the loop's masks are drawn but unused (boxes are the cheapest)."""
        return ("box",)
