"""The improved WGAN and its latent search (Vitoria et al. 2019): networks, objective, search, inpainter, CLI."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import pytest
import torch
from click.testing import CliRunner

from restore.checkpoint import inference_checkpoint, save_checkpoint
from restore.inference.poisson import PoissonBlended
from restore.models.config import config_to_dict
from restore.models.registry import get_method
from restore.models.wgan import WGANConfig, WGANCritic, WGANGenerator
from restore.models.wgan.config import SEARCH_SETTINGS
from restore.models.wgan.inpainter import LatentSearchInpainter, load_wgan
from restore.models.wgan.search import (
    GradientStencil,
    InpaintingObjective,
    SearchLosses,
    initial_latents,
    known_gradients,
    latent_search,
    proximity_weights,
)
from restore.models.wgan.trainer import WGANTrainer

SMALL = WGANConfig(width=4, latent=8, size=16, search_steps=20, restarts=2)


def _networks(config: WGANConfig = SMALL, seed: int = 0) -> tuple[WGANGenerator, WGANCritic]:
    torch.manual_seed(seed)
    generator, critic = WGANGenerator(config).eval(), WGANCritic(config).eval()
    with torch.no_grad():  # batch norm with non-trivial running statistics, as after training
        for module in generator.modules():
            if isinstance(module, torch.nn.BatchNorm2d):
                module.running_mean.uniform_(-0.1, 0.1)
                module.running_var.uniform_(0.5, 1.5)
    return generator, critic


def _hole_case(batch: int = 1, size: int = 16, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    generator = torch.Generator().manual_seed(seed)
    image = torch.rand(batch, 3, size, size, generator=generator)
    hole = torch.zeros(batch, 1, size, size)
    hole[:, :, size // 4 : size // 2 + 2, size // 4 : size // 2 + 3] = 1
    return image, hole


# -- networks -------------------------------------------------------------------------------
def test_the_paper_width_has_gulrajanis_parameter_counts() -> None:
    config = WGANConfig()
    assert sum(p.numel() for p in WGANGenerator(config).parameters()) == 8_541_443
    assert sum(p.numel() for p in WGANCritic(config).parameters()) == 7_492_801


@pytest.mark.parametrize("size", [8, 16, 32, 64])
def test_networks_make_and_judge_images_of_their_size(size: int) -> None:
    config = WGANConfig(width=2, latent=8, size=size)
    generator, critic = _networks(config)
    with torch.no_grad():
        images = generator(torch.randn(3, 8))
    assert images.shape == (3, 3, size, size) and float(images.abs().max()) <= 1.0
    assert critic(images).shape == (3,)
    with pytest.raises(ValueError, match="16² images"):
        WGANCritic(WGANConfig(width=2, size=16))(torch.zeros(1, 3, 32, 32))


def test_the_critic_has_no_batch_normalisation_so_scores_are_per_sample() -> None:
    _, critic = _networks()
    critic.train()
    images = torch.rand(4, 3, 16, 16) * 2 - 1
    assert not any(isinstance(m, torch.nn.modules.batchnorm._BatchNorm) for m in critic.modules())
    torch.testing.assert_close(critic(images)[:1], critic(images[:1]), atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("bad", [{"size": 48}, {"size": 4}, {"window": 4}, {"restarts": 0}, {"search_steps": -1}, {"beta1": 1.0}])
def test_config_rejects_impossible_values(bad: dict) -> None:
    with pytest.raises(ValueError, match=next(iter(bad))):
        WGANConfig(**bad)


# -- the objective ----------------------------------------------------------------------------
def _weights_by_hand(hole: np.ndarray, window: int) -> np.ndarray:
    """Eq. 5 literally: W(i) = Σ_{j ∈ N_i} (1 − M(j)) / |N_i| for known i (M = 1 known), 0 in the hole."""
    height, width = hole.shape
    r = window // 2
    out = np.zeros_like(hole, dtype=np.float64)
    for y in range(height):
        for x in range(width):
            if hole[y, x]:
                continue
            count = sum(hole[j, i] for j in range(max(0, y - r), min(height, y + r + 1)) for i in range(max(0, x - r), min(width, x + r + 1)))
            out[y, x] = count / window**2
    return out


def test_proximity_weights_are_the_papers_ring_around_the_hole() -> None:
    hole = np.zeros((9, 9), bool)
    hole[4, 4] = True
    weights = proximity_weights(torch.from_numpy(hole).float()[None, None])[0, 0].numpy()
    expected = np.zeros((9, 9))
    expected[1:8, 1:8] = 1 / 49  # every known pixel within 3 of the hole sees it once
    expected[4, 4] = 0  # the hole itself has no weight
    np.testing.assert_allclose(weights, expected, atol=1e-7)
    assert weights[4, 3] > 0 and weights[0, 0] == 0  # largest next to the hole, nothing far away (Yeh's code inverts this)


def test_proximity_weights_match_equation_5_on_a_random_mask() -> None:
    rng = np.random.default_rng(4)
    hole = rng.random((12, 15)) < 0.2
    for window in (3, 7):
        weights = proximity_weights(torch.from_numpy(hole).float()[None, None], window)[0, 0].numpy()
        np.testing.assert_allclose(weights, _weights_by_hand(hole, window), atol=1e-6)


def test_gradients_are_central_inside_and_one_sided_at_the_hole_edge() -> None:
    row = torch.tensor([[0.0, 1.0, 4.0, 9.0, 16.0, 25.0]]).view(1, 1, 1, 6)
    known = torch.tensor([[1.0, 1.0, 1.0, 0.0, 1.0, 1.0]]).view(1, 1, 1, 6)
    gx, gy = known_gradients(row * known, GradientStencil.from_known(known))
    # x=0: forward 1−0; x=1: central (4−0)/2; x=2: backward 4−1 (x=3 is a hole); x=4: forward 25−16; x=5: backward 25−16;
    # the hole pixel x=3 reads its two known neighbours, (16−4)/2, but has no weight in the loss
    torch.testing.assert_close(gx[0, 0, 0], torch.tensor([1.0, 2.0, 3.0, 6.0, 9.0, 9.0]))
    assert float(proximity_weights(1 - known)[0, 0, 0, 3]) == 0
    assert float(gy.abs().max()) == 0  # one row: no vertical neighbour anywhere


def test_the_objective_is_zero_for_the_image_itself_and_ignores_hole_content() -> None:
    image, hole = _hole_case()
    objective = InpaintingObjective(image * 2 - 1, hole, SearchLosses())
    terms = objective.terms(image * 2 - 1, torch.zeros(1))
    assert float(terms["contextual"]) == 0 and float(terms["gradient"]) < 1e-6
    scrambled = torch.where(hole > 0.5, torch.rand_like(image), image) * 2 - 1
    terms = objective.terms(scrambled, torch.zeros(1))
    assert float(terms["contextual"]) == 0  # W is zero in the hole
    other = InpaintingObjective(scrambled, hole, SearchLosses())
    torch.testing.assert_close(other.target, objective.target)


def test_losses_are_per_image_sums_weighted_by_alpha_beta_eta() -> None:
    image, hole = _hole_case(batch=2)
    objective = InpaintingObjective(image * 2 - 1, hole, SearchLosses(alpha=0.1, beta=0.9, eta=0.5))
    generated = torch.zeros_like(image)
    terms = objective.terms(generated, torch.tensor([2.0, -1.0]))
    expected_contextual = (objective.weights * (image * 2 - 1).abs()).sum(dim=(1, 2, 3))
    torch.testing.assert_close(terms["contextual"], expected_contextual)
    torch.testing.assert_close(terms["prior"], torch.tensor([-2.0, 1.0]))
    total = objective.total(terms)
    torch.testing.assert_close(total, 0.1 * terms["contextual"] + 0.9 * terms["gradient"] + 0.5 * terms["prior"])


# -- the search -----------------------------------------------------------------------------
def test_the_search_lowers_its_loss_and_respects_the_clip() -> None:
    generator, critic = _networks()
    image, hole = _hole_case(batch=2)
    for clip in (1.0, 0.3):
        result = latent_search(generator, critic, image * 2 - 1, hole, steps=20, restarts=2, lr=0.03, z_clip=clip)
        assert result.history.shape == (21, 2)
        assert bool((result.history[-1] < result.history[0]).all())
        assert bool((result.z.abs() <= torch.tensor(clip, dtype=torch.float32)).all())
        assert result.images.shape == (2, 3, 16, 16)


def test_the_search_changes_no_weight_and_leaves_no_gradient_on_them() -> None:
    generator, critic = _networks()
    before = [p.detach().clone() for p in [*generator.parameters(), *critic.parameters()]]
    image, hole = _hole_case()
    with torch.no_grad():
        latent_search(generator, critic, image * 2 - 1, hole, steps=5)
    after = [*generator.parameters(), *critic.parameters()]
    assert all(torch.equal(a, b) and b.grad is None for a, b in zip(before, after, strict=True))


def test_restarts_keep_the_lowest_loss_and_start_where_one_start_does() -> None:
    generator, critic = _networks()
    image, hole = _hole_case()
    torch.testing.assert_close(initial_latents(3, 8, seed=5)[:1], initial_latents(1, 8, seed=5))
    torch.testing.assert_close(initial_latents(3, 128, seed=5)[:2], initial_latents(2, 128, seed=5))
    one = latent_search(generator, critic, image * 2 - 1, hole, steps=15, restarts=1, seed=5)
    three = latent_search(generator, critic, image * 2 - 1, hole, steps=15, restarts=3, seed=5)
    assert float(three.loss) <= float(one.loss) + 1e-5
    objective = InpaintingObjective(image * 2 - 1, hole, SearchLosses())
    with torch.no_grad():
        again = objective.total(objective.terms(generator(three.z), critic(generator(three.z))))
    torch.testing.assert_close(again, three.loss, atol=1e-4, rtol=1e-5)


def test_an_images_result_does_not_depend_on_its_batch_mates() -> None:
    generator, critic = _networks()
    image, hole = _hole_case(batch=3, seed=1)
    other, other_hole = _hole_case(batch=3, seed=2)
    together = latent_search(generator, critic, image * 2 - 1, hole, steps=10, restarts=2)
    mixed = latent_search(generator, critic, torch.cat([image[:1], other[1:]]) * 2 - 1, torch.cat([hole[:1], other_hole[1:] * 0]), steps=10, restarts=2)
    assert torch.equal(together.images[0], mixed.images[0]) and torch.equal(together.z[0], mixed.z[0])


# -- the inpainter --------------------------------------------------------------------------
def _inpainter(**settings) -> LatentSearchInpainter:
    generator, critic = _networks()
    return LatentSearchInpainter(generator, critic, dataclasses.replace(SMALL, **settings))


@pytest.mark.parametrize("shape", [(16, 16), (40, 23), (7, 9)])
def test_predict_is_the_best_sample_at_the_images_size_and_inpaint_keeps_known_pixels(shape: tuple[int, int]) -> None:
    inpainter = _inpainter(search_steps=5)
    image = torch.rand(2, 3, *shape)
    mask = torch.zeros(2, 1, *shape)
    mask[0, :, shape[0] // 3 : 2 * shape[0] // 3 + 1, shape[1] // 3 : 2 * shape[1] // 3 + 1] = 1
    predicted = inpainter.predict(image, mask)
    assert predicted.shape == image.shape and bool(((predicted >= 0) & (predicted <= 1)).all())
    assert torch.equal(predicted[1], image[1])  # no hole: not searched, given back
    out = inpainter.inpaint(image, mask)
    known = (mask < 0.5).expand_as(image)
    assert torch.equal(out[known], image[known]) and not torch.equal(out[~known], image[~known])
    blended = PoissonBlended(inpainter).inpaint(image, mask)
    assert torch.equal(blended[known], image[known]) and bool(((blended >= 0) & (blended <= 1)).all())


def test_a_resized_hole_never_counts_hole_pixels_as_known() -> None:
    inpainter = _inpainter(search_steps=0)
    seen = {}
    original = inpainter.search

    def spy(image, hole):
        seen["hole"] = hole
        return original(image, hole)

    inpainter.search = spy
    mask = torch.zeros(1, 1, 50, 50)
    mask[0, 0, 10, 10] = 1  # one pixel: at 16² it must still be a hole
    inpainter.predict(torch.rand(1, 3, 50, 50), mask)
    assert float(seen["hole"].sum()) >= 1


def _checkpoint(tmp_path: Path, trainer: WGANTrainer, keep: tuple[str, ...] = ("generator", "critic")) -> Path:
    full = {
        "method": "wgan", "config": config_to_dict(trainer.config), "step": 1, "metadata": {},
        "models": {name: module.state_dict() for name, module in trainer.modules().items()},
    }  # fmt: skip
    path = tmp_path / "wgan.pt"
    save_checkpoint(inference_checkpoint(full, keep=keep), path)
    return path


def test_load_takes_search_settings_and_rejects_others(tmp_path: Path) -> None:
    path = _checkpoint(tmp_path, WGANTrainer(SMALL))
    inpainter = load_wgan(path, "cpu", bf16=False, search_steps=7, restarts=3)
    assert inpainter.config.search_steps == 7 and inpainter.config.restarts == 3 and inpainter.config.width == 4
    with pytest.raises(ValueError, match="not a wgan search setting: width"):
        load_wgan(path, "cpu", width=8)
    with pytest.raises(ValueError, match="restarts"):
        load_wgan(path, "cpu", restarts=0)
    with pytest.raises(ValueError, match="no critic"):
        load_wgan(_checkpoint(tmp_path, WGANTrainer(SMALL), keep=("generator",)), "cpu")


def test_the_record_ships_the_critic_and_lists_the_search_settings() -> None:
    method = get_method("wgan")
    assert method.ship_modules == ("generator", "critic") and method.native_size == 64
    assert method.inference_settings == SEARCH_SETTINGS and method.default_blend == "poisson" and method.blendable
    assert WGANConfig().search_steps == 1000 and (WGANConfig().alpha, WGANConfig().beta, WGANConfig().eta) == (0.1, 0.9, 0.5)


# -- training -------------------------------------------------------------------------------
def test_a_training_step_moves_both_networks_and_needs_crops_of_the_generators_size() -> None:
    trainer = WGANTrainer(SMALL)
    before = {name: [p.detach().clone() for p in trainer.modules()[name].parameters()] for name in ("generator", "critic")}
    batches = [(torch.rand(4, 3, 16, 16), torch.zeros(4, 1, 16, 16)) for _ in range(6)]
    losses = trainer.train_step(0, batches)
    assert {"wasserstein", "penalty", "wgan"} <= set(losses)
    for name, params in before.items():
        assert any(not torch.equal(a, b) for a, b in zip(params, trainer.modules()[name].parameters(), strict=True)), name
    with pytest.raises(ValueError, match="--size 16"):
        trainer.train_step(1, [(torch.rand(4, 3, 32, 32), torch.zeros(4, 1, 32, 32)) for _ in range(6)])


def test_samples_come_from_the_moving_average_in_eval_mode() -> None:
    trainer = WGANTrainer(SMALL)
    first, again = trainer.sample(3, seed=2), trainer.sample(3, seed=2)
    assert first.shape == (3, 3, 16, 16) and torch.equal(first, again)
    assert float(first.min()) >= 0 and float(first.max()) <= 1


# -- the command line -----------------------------------------------------------------------
def test_batch_set_is_for_inference_settings_of_methods_that_have_them(tmp_path: Path) -> None:
    from restore.cli import main

    args = ["batch", "--input", str(tmp_path), "--masks", str(tmp_path)]
    result = CliRunner().invoke(main, [*args, "--method", "telea", "--set", "restarts=2"])
    assert result.exit_code == 2 and "--set" in result.output and "no inference settings" in result.output
    result = CliRunner().invoke(main, [*args, "--method", "wgan", "--set", "width=8"])
    assert result.exit_code == 2 and "not an inference setting of wgan" in result.output
    result = CliRunner().invoke(main, [*args, "--method", "wgan", "--set", "restarts=0"])
    assert result.exit_code == 2 and "restarts" in result.output


def test_training_pictures_of_a_generative_model_are_a_grid_of_its_samples(tmp_path: Path) -> None:
    import imageio.v3 as iio

    from restore.training.loop import HeldOut, write_samples

    trainer = WGANTrainer(SMALL)
    write_samples(trainer, HeldOut([], {}), tmp_path / "s.png", count=3)
    picture = iio.imread(tmp_path / "s.png")
    assert picture.shape == (48, 48, 3)
    expected = (trainer.sample(9, seed=0)[4].clamp(0, 1) * 255).round().byte().permute(1, 2, 0).numpy()
    assert np.array_equal(picture[16:32, 16:32], expected)


def test_a_long_image_is_padded_to_a_square_not_squashed() -> None:
    from restore.models.wgan.inpainter import pad_to_square

    image = torch.arange(2 * 5, dtype=torch.float32).view(1, 1, 2, 5)
    square = pad_to_square(image)
    assert square.shape == (1, 1, 5, 5) and torch.equal(square[..., :2, :], image)
    inpainter = _inpainter(search_steps=0)
    seen = {}
    original = inpainter.search
    inpainter.search = lambda small, hole: seen.setdefault("hole", hole) is not None and original(small, hole)
    mask = torch.zeros(1, 1, 20, 80)
    mask[..., 5:10, 30:50] = 1  # a 5×20 hole in a 20×80 image: at 16² about 1 row × 4 columns (plus the resize filter's reach)
    inpainter.predict(torch.rand(1, 3, 20, 80), mask)
    rows, cols = (seen["hole"][0, 0] > 0).nonzero().unbind(1)
    assert int(rows.max() - rows.min()) + 1 <= 3 and int(cols.max() - cols.min()) + 1 >= 4  # squashed: 5 rows


def test_batch_set_reaches_the_workers_and_binds_the_resume(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from distributed import LocalCluster
    from helpers import smoke_checkpoint
    from pipelines.batch_fakes import make_images, make_masks, write_archive, write_masks

    from restore.cli import main
    from restore.data.archive import open_archive
    from restore.inference.restoration import restore_images

    monkeypatch.setenv("RESTORE_BF16", "0")
    checkpoint = smoke_checkpoint("wgan", tmp_path / "weights")
    images = make_images(2, 20, 28, seed=4)
    holes = make_masks(images, seed=2)
    archive, masks = write_archive(tmp_path / "w.zarr", images), write_masks(tmp_path / "masks", holes)
    output = tmp_path / "out.zarr"
    with LocalCluster(n_workers=1, threads_per_worker=1, processes=True, dashboard_address=":0", silence_logs=40) as cluster:
        args = ["batch", "--input", str(archive), "--masks", str(masks), "--method", "wgan", "--checkpoint", str(checkpoint),
                "--scheduler", cluster.scheduler_address, "--output", str(output), "--blend", "none"]
        result = CliRunner().invoke(main, [*args, "--set", "search_steps=4", "--set", "restarts=3"])
        assert result.exit_code == 0, result.output
        assert open_archive(output).attrs["settings"] == {"search_steps": 4, "restarts": 3}
        refused = CliRunner().invoke(main, [*args, "--set", "search_steps=5", "--set", "restarts=3"])
        assert refused.exit_code == 2 and "was written with settings" in refused.output
    engine = load_wgan(checkpoint, "cpu", search_steps=4, restarts=3)
    for key, image in images.items():
        expected = restore_images(engine, [image], [holes[key]], strategy="whole")[0]
        assert np.abs(open_archive(output).read(key).astype(int) - expected.astype(int)).max() <= 1, key
