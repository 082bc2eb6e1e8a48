"""DeepGIN hyper-parameters: the paper's and its official code's (rlct1/gin) values as defaults."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

#: Dilation rates of the coarse stage's SPD blocks (8 parallel branches, ``MultiDilationResnetBlock``).
COARSE_DILATIONS: tuple[int, ...] = (2, 3, 4, 5, 6, 8, 10, 1)
#: Dilation rates of the refinement stage's SPD blocks (4 branches, ``MultiDilationResnetBlock_v3``).
REFINE_DILATIONS: tuple[int, ...] = (2, 3, 4, 5)


@dataclass(frozen=True)
class DeepGINConfig:
    """Networks, losses, schedule and optimisers of DeepGIN.

    Attributes:
        prefill: feed the coarse stage a push-pull fill of the holes (:func:`restore.nn.prefill.pyramid_fill`)
            in place of the code's white paint, and make each of the three image outputs (coarse,
            refined, 1/4 resolution) a residual over its stage's input image (our addition, as CSA's:
            the network corrects a smooth fill instead of learning colour propagation from scratch,
            which took it thousands of steps; False: the paper's network).
        width: the code's ``ngf`` (paper: 64, 42.93 M generator parameters). Layers use
            width/2, 1, 2, 4 and 8 times it; must be even (the SPD branches and the attention's
            inner channels split it in halves, quarters and eighths).
        coarse_blocks: SPD blocks (8 rates) at 1/8 resolution in the coarse stage (paper: 6).
        refine_blocks: SPD blocks (4 rates) at 1/16 resolution in the refinement stage, half of
            them before the bottleneck self-attention and half after (paper: 6).
        discriminator_width: first-layer channels of both patch discriminators (code: ``ndf`` 64).
        discriminator_layers: stride-2 convolutions of each patch discriminator (code: ``n_layers_D`` 2).
        discriminator_features: output channels of each discriminator's patch map (code: 256, the
            paper's "c feature maps"; 1 gives pix2pix's one logit per patch).
        hole_weight: λ_hole, the weight of hole pixels in the three L1 terms (paper: 5).
        known_weight: the weight of known pixels in them (code: 1; ours 0). With ``prefill`` the
            outputs are residuals that the composite throws away outside the hole, so a known-pixel
            term only pulls every residual to zero.
        pixel_loss: ``"l1"`` (paper and code) or ``"l2"``, the squared error with the same
            weights, for the three pixel terms. runs/deepgin-d (L1, known pixels, the old start)
            sat at the fill for 2,888 steps; with the zero start and the hole alone, L2
            (runs/deepgin-g) and L1 (runs/deepgin-f) were both 0.1–0.3 dB above it at step 3,000,
            L1 with 3–5 % lower SWD. The paper's network: ``prefill=false init_scale=0.1
            known_weight=1``.
        perceptual_weight: λ_perceptual, VGG-19 feature L1 (paper: 0.05).
        style_weight: λ_style, VGG-19 Gram-matrix distance (paper: 80).
        tv_weight: λ_tv, total variation of the completed image (paper: 0.1).
        adversarial_weight: λ_adv, the hinge generator loss of both discriminators (paper: 0.001,
            beside its VGG terms). Without them (no ImageNet weights here) 0.001 leaves the term
            0.15 % of the generator's update and 0.1 about 8 % (``benchmarks/loss_balance.py``);
            the shipped run used 0.1 (runs/deepgin-adv: held-out SWD down 20-25 % in 5,000 steps).
        vgg_size: images are resized to this side before VGG-19 (code: 224); 0: taken as they are.
        warmup_steps: the first steps train the generator alone on the L1 terms (paper: 10
            epochs; 25,825 steps = 10 × 10,330 ADE20K images / 4 per batch).
        lr: the generators' Adam learning rate (paper: 1e-4).
        discriminator_lr: the discriminators' (paper: 4e-4).
        beta1, beta2: Adam (paper: 0.5; code: 0.999).
        clip_norm: gradient-norm clipping of the generator (code: 3; 0: none).
        init_scale: the generator's convolution weights start Kaiming-normal times this (code: 0.1,
            ESRGAN's "smaller initialisation"). Ours is 1 (plain Kaiming): with ``prefill`` the
            ×0.1 network's residuals stay ~1e-4 for hundreds of steps, so it learns nothing over the fill.
        ema_decay: exponential moving average of the generator (our addition; 0: none).
        output_lowpass: at inference, resize the prediction to half size and back (bicubic) before
            compositing, as the official test script does after re-assembling the sub-images (an
            extra low-pass that is not in the paper). An inference setting (``restore batch --set
            output_lowpass=true``); off by default (a blur; to be scored on the protocol once a
            model is trained); never in training.
    """

    #: What runs saved before these fields existed trained with (:func:`restore.models.config.saved_config`).
    FIELDS_ADDED: ClassVar[dict[str, Any]] = {"known_weight": 1.0, "pixel_loss": "l1"}

    width: int = 64
    prefill: bool = True
    coarse_blocks: int = 6
    refine_blocks: int = 6
    discriminator_width: int = 64
    discriminator_layers: int = 2
    discriminator_features: int = 256
    hole_weight: float = 5.0
    known_weight: float = 0.0
    pixel_loss: str = "l1"
    perceptual_weight: float = 0.05
    style_weight: float = 80.0
    tv_weight: float = 0.1
    adversarial_weight: float = 0.001
    vgg_size: int = 224
    warmup_steps: int = 25_825
    lr: float = 1e-4
    discriminator_lr: float = 4e-4
    beta1: float = 0.5
    beta2: float = 0.999
    clip_norm: float = 3.0
    init_scale: float = 1.0
    ema_decay: float = 0.999
    output_lowpass: bool = False

    def __post_init__(self) -> None:
        if self.width < 2 or self.width % 2:
            raise ValueError(f"DeepGINConfig.width must be even and >= 2, got {self.width}")
        if self.refine_blocks < 2 or self.refine_blocks % 2:
            raise ValueError(f"DeepGINConfig.refine_blocks must be even and >= 2 (half each side of the attention), got {self.refine_blocks}")
        for name in ("coarse_blocks", "discriminator_layers", "discriminator_width", "discriminator_features"):
            if getattr(self, name) < 1:
                raise ValueError(f"DeepGINConfig.{name} must be >= 1, got {getattr(self, name)}")
        if self.pixel_loss not in ("l1", "l2"):
            raise ValueError(f"DeepGINConfig.pixel_loss must be 'l1' or 'l2', got {self.pixel_loss!r}")
        if self.vgg_size != 0 and self.vgg_size < 16:
            raise ValueError(f"DeepGINConfig.vgg_size must be 0 or >= 16 (VGG-19 pools 4 times before conv5_1), got {self.vgg_size}")
        for name in ("hole_weight", "known_weight", "perceptual_weight", "style_weight", "tv_weight", "adversarial_weight", "warmup_steps",
                     "lr", "discriminator_lr", "clip_norm"):
            if getattr(self, name) < 0:
                raise ValueError(f"DeepGINConfig.{name} must be >= 0, got {getattr(self, name)}")
        if self.init_scale <= 0:
            raise ValueError(f"DeepGINConfig.init_scale must be > 0, got {self.init_scale}")
        if not 0.0 <= self.ema_decay < 1.0:
            raise ValueError(f"DeepGINConfig.ema_decay must be in [0, 1), got {self.ema_decay}")

    @property
    def multiple(self) -> int:
        """Input sides must be multiples of this: four stride-2 convolutions in the refinement stage."""
        return 16

    @property
    def min_training_size(self) -> int:
        """Training crops must be at least this side: the half-scale discriminator's four 4×4
        convolutions need 16² at its input."""
        return 32

    @property
    def needs_vgg(self) -> bool:
        """Whether training needs VGG-19 (perceptual or style loss)."""
        return self.perceptual_weight > 0 or self.style_weight > 0

    @property
    def training_masks(self) -> tuple[str, ...]:
        """``restore train``'s default ``--masks``, the paper's three kinds (§5.1): boxes of 30–70 % of
        each side, DeepFill v2 free-form strokes, the AIM 2020 cellular-automaton masks. The paper
        gives each image all three; the loop draws one kind per sample (the same mix in expectation)."""
        return ("box:0.3-0.7", "freeform", "cellular")
