"""GLCIC hyper-parameters: the paper's network and schedule ratios, the CIFAR-scale seed's losses."""

from __future__ import annotations

from dataclasses import dataclass

from restore.data.mask_generators import TRAINING_KINDS

GAN_LOSSES = ("lsgan", "bce")


@dataclass(frozen=True)
class GLCICConfig:
    """Networks, phases, losses and optimiser of GLCIC.

    Attributes:
        width: channels of the completion network's first layer (paper: 64); its layers use
            1, 2 and 4 times it, and half of it before the output.
        dilations: rates of the four dilated convolutions at 1/4 resolution (paper: 2, 4, 8, 16).
            At 32² the map is 8×8, so a 3×3 kernel at rate 8 or 16 reads only zero padding
            off-centre: those layers act as 1×1 convolutions there (kept, as the paper's net).
        critic_width: first-layer channels of both discriminators (paper: 64); each layer
            doubles it up to 8 times.
        global_layers: stride-2 5×5 convolutions of the global discriminator (paper: 6 at 256²;
            32²: 3, down to 4×4).
        local_layers: those of the local discriminator (paper: 5 on its 128² window; 32²: 2 on 16²).
        features: the output of each discriminator's linear layer (paper: 1024), joined into one decision.
        local_size: the local discriminator's window, centred on the hole (paper: 128 in 256²; seed: 16 in 32²).
        global_size: the side the global discriminator takes (paper: 256); other crops are resized to it.
        generator_steps: phase 1, the completion network alone on the hole's squared error (paper: T_C = 90,000).
        discriminator_steps: phase 2, the discriminators alone (paper: T_D = 10,000); then both.
        gan_loss: ``"lsgan"`` (least squares, the seed's) or ``"bce"`` (the paper's cross-entropy).
        adversarial_weight: α, the GAN term's weight beside the squared error (seed: 0.0005 with
            LSGAN; paper: 0.0004 with cross-entropy). At 0.0005 the term is under 1 % of the
            completion network's update (``benchmarks/loss_balance.py``), which the paper's
            400,000 joint steps can afford and a CPU cannot; runs/glcic-c's joint phase used 0.02
            (about 15 %; not shipped yet: its early fills show a plaid).
        hole_sides: training boxes' sides as fractions of the crop side (paper: 96–128 px of 256,
            0.375–0.5; seed: 5–12 px of 32, 0.15625–0.375).
        irregular_masks: mask kinds drawn beside the boxes (each kind as often as the boxes;
            ``()`` for boxes only, as both papers).
        lr, beta1, beta2: Adam for both networks (the seed's optimiser; the paper used ADADELTA).
        ema_decay: exponential moving average of the completion network (our addition; 0: none).
    """

    width: int = 64
    dilations: tuple[int, ...] = (2, 4, 8, 16)
    critic_width: int = 64
    global_layers: int = 6
    local_layers: int = 5
    features: int = 1024
    local_size: int = 128
    global_size: int = 256
    generator_steps: int = 90_000
    discriminator_steps: int = 10_000
    gan_loss: str = "lsgan"
    adversarial_weight: float = 0.0005
    hole_sides: tuple[float, float] = (0.375, 0.5)
    irregular_masks: tuple[str, ...] = ("freeform", "medium", "thick", "cellular")
    lr: float = 2e-4
    beta1: float = 0.5
    beta2: float = 0.999
    ema_decay: float = 0.999

    def __post_init__(self) -> None:
        for name in ("dilations", "hole_sides", "irregular_masks"):  # TOML and checkpoints give lists
            object.__setattr__(self, name, tuple(getattr(self, name)))
        for name in ("width", "critic_width", "features", "local_size", "global_size"):
            if getattr(self, name) < 2:
                raise ValueError(f"GLCICConfig.{name} must be >= 2, got {getattr(self, name)}")
        for name in ("global_layers", "local_layers"):
            if getattr(self, name) < 1:
                raise ValueError(f"GLCICConfig.{name} must be >= 1, got {getattr(self, name)}")
        if len(self.dilations) < 1 or min(self.dilations) < 1:
            raise ValueError(f"GLCICConfig.dilations must be rates >= 1, got {self.dilations}")
        if self.gan_loss not in GAN_LOSSES:
            raise ValueError(f"GLCICConfig.gan_loss must be one of {', '.join(GAN_LOSSES)}, got {self.gan_loss!r}")
        lo, hi = (float(v) for v in self.hole_sides) if len(self.hole_sides) == 2 else (-1.0, -1.0)
        if not 0.0 < lo <= hi <= 1.0:
            raise ValueError(f"GLCICConfig.hole_sides must be (LO, HI) with 0 < LO <= HI <= 1, got {self.hole_sides}")
        bad = [kind for kind in self.irregular_masks if kind not in TRAINING_KINDS or kind == "box"]
        if bad:
            raise ValueError(f"GLCICConfig.irregular_masks: unknown or unusable kind(s) {', '.join(bad)}")
        for name in ("generator_steps", "discriminator_steps", "adversarial_weight", "lr"):
            if getattr(self, name) < 0:
                raise ValueError(f"GLCICConfig.{name} must be >= 0, got {getattr(self, name)}")
        if not 0.0 <= self.ema_decay < 1.0:
            raise ValueError(f"GLCICConfig.ema_decay must be in [0, 1), got {self.ema_decay}")

    @property
    def multiple(self) -> int:
        """Input sides must be multiples of this: two stride-2 convolutions."""
        return 4

    @property
    def min_training_size(self) -> int:
        """Training crops must be at least this side: the local window lies inside them."""
        return self.local_size

    @property
    def training_masks(self) -> tuple[str, ...]:
        """``restore train``'s default ``--masks``: the configured boxes, then the irregular kinds."""
        lo, hi = self.hole_sides
        return (f"box:{lo:g}-{hi:g}", *self.irregular_masks)

    def phase_bounds(self) -> tuple[int, int]:
        """The first step of phase 2 and of phase 3."""
        return self.generator_steps, self.generator_steps + self.discriminator_steps
