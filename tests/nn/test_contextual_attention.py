"""Contextual attention against a naive reference (loops over queries, keys and offsets), both forms."""

from __future__ import annotations

import math

import pytest
import torch

from restore.nn.contextual_attention import ContextualAttention, contextual_attention, fuse_scores


def naive_contextual_attention(features: torch.Tensor, hole: torch.Tensor, rate: int = 2, scale: float = 10.0, fuse: bool = True):
    """The layer's definition written out with Python loops, one sample at a time (float64)."""
    results = [_naive_sample(features[b], hole[b, 0], rate, scale, fuse) for b in range(features.shape[0])]
    return torch.stack([out for out, _ in results]), torch.stack([offsets for _, offsets in results])


def _naive_sample(features: torch.Tensor, hole: torch.Tensor, rate: int, scale: float, fuse: bool):
    channels, height, width = features.shape
    rows, cols = height // rate, width // rate
    small = features[:, ::rate, ::rate]
    known = {(y, x): bool((hole[y * rate : (y + 1) * rate, x * rate : (x + 1) * rate] < 0.5).all()) for y in range(rows) for x in range(cols)}
    positions = list(known)

    def neighbours(y, x):
        return [(y + dy, x + dx) for dy in (-1, 0, 1) for dx in (-1, 0, 1)]

    unit = {}
    for y, x in positions:
        values = torch.zeros((channels, 3, 3), dtype=features.dtype)
        for i, (yy, xx) in enumerate(neighbours(y, x)):
            if (yy, xx) in known:
                values[:, i // 3, i % 3] = small[:, yy, xx]
        unit[(y, x)] = values.flatten() / max(float(values.norm()), 1e-4)
    raw = {(q, k): float(unit[q] @ unit[k]) for q in positions for k in positions}

    def score(q, k):
        if not fuse:
            return raw[(q, k)]
        pairs = zip(neighbours(*q), neighbours(*k), strict=True)  # the same offset d on both sides
        return sum(raw[(qq, kk)] for qq, kk in pairs if qq in unit and kk in unit)

    keys = [k for k in positions if all(known.get(n, True) for n in neighbours(*k))]
    offsets = torch.zeros((2, rows, cols), dtype=torch.long)
    if not keys:
        return features.clone(), offsets
    pasted = torch.zeros((channels, height + rate, width + rate), dtype=features.dtype)
    count = torch.zeros((height + rate, width + rate), dtype=features.dtype)
    for q in positions:
        logits = torch.tensor([scale * score(q, k) for k in keys], dtype=torch.float64)
        weights = torch.softmax(logits, dim=0)
        best = keys[int(logits.argmax())]
        offsets[:, q[0], q[1]] = torch.tensor([best[0] - q[0], best[1] - q[1]])
        # The key's 2r-sided patch of the full map, centred on its cell, pasted centred on the query's.
        for weight, k in zip(weights, keys, strict=True):
            for i in range(2 * rate):
                for j in range(2 * rate):
                    src_y = min(max(k[0] * rate - rate // 2 + i, 0), height - 1)  # the edge repeats beyond the map
                    src_x = min(max(k[1] * rate - rate // 2 + j, 0), width - 1)
                    pasted[:, q[0] * rate + i, q[1] * rate + j] += weight * features[:, src_y, src_x]
        count[q[0] * rate : q[0] * rate + 2 * rate, q[1] * rate : q[1] * rate + 2 * rate] += 1
    crop = slice(rate // 2, rate // 2 + height), slice(rate // 2, rate // 2 + width)
    return pasted[:, crop[0], crop[1]] / count[crop[0], crop[1]], offsets


def random_case(seed: int, batch: int = 2, channels: int = 3, height: int = 8, width: int = 10):
    generator = torch.Generator().manual_seed(seed)
    features = torch.randn((batch, channels, height, width), generator=generator, dtype=torch.float64)
    hole = torch.zeros((batch, 1, height, width), dtype=torch.float64)
    hole[0, :, 2:6, 3:7] = 1  # inside
    if batch > 1:
        hole[1, :, :3, :] = 1  # touches the top border, another shape: per-sample masks
        hole[1, :, :, -2:] = 1
    return features, hole


@pytest.mark.parametrize("fuse", [True, False])
def test_full_form_equals_the_naive_reference(fuse):
    features, hole = random_case(0)
    expected, expected_offsets = naive_contextual_attention(features, hole, fuse=fuse)
    out, offsets = contextual_attention(features, hole, fuse=fuse)
    torch.testing.assert_close(out, expected, rtol=1e-9, atol=1e-9)
    assert torch.equal(offsets, expected_offsets)


@pytest.mark.parametrize("block", [(1, 1), (5, 3), (7, 2), (24, 4), (48, 1)])
@pytest.mark.parametrize("fuse", [True, False])
def test_blocked_form_equals_the_full_form(block, fuse):
    features, hole = random_case(1, height=8, width=12)
    full, full_offsets = contextual_attention(features, hole, fuse=fuse)
    blocked, blocked_offsets = contextual_attention(features, hole, fuse=fuse, block=block)
    torch.testing.assert_close(blocked, full, rtol=1e-10, atol=1e-10)
    assert torch.equal(blocked_offsets, full_offsets)


@pytest.mark.parametrize("margin", [0, 1, 2])
def test_queries_near_the_hole_only_equal_the_full_form_there(margin):
    """With query_margin, queries within the margin of a hole cell (of any sample) match the full form;
    positions no such query pastes onto keep their features."""
    features, hole = random_case(9, height=24, width=24)
    hole[:] = 0
    hole[0, :, 4:8, 6:10] = 1
    hole[1, :, 14:18, 14:20] = 1
    full, full_offsets = contextual_attention(features, hole)
    near, near_offsets = contextual_attention(features, hole, query_margin=margin, block=(7, 5))
    cells = torch.nn.functional.max_pool2d(hole, 2).amax(dim=0, keepdim=True)
    chosen = torch.nn.functional.max_pool2d(cells, 2 * margin + 1, stride=1, padding=margin)[0, 0] > 0.5  # (12, 12) grid
    assert torch.equal(near_offsets[:, :, chosen], full_offsets[:, :, chosen])
    assert (near_offsets[:, :, ~chosen] == 0).all()
    # Full-resolution positions every covering query of which is chosen: exact.
    inner = torch.nn.functional.max_pool2d((~chosen).float()[None, None], 3, stride=1, padding=1)[0, 0] < 0.5
    inner_pixels = inner.repeat_interleave(2, 0).repeat_interleave(2, 1)
    torch.testing.assert_close(near[..., inner_pixels], full[..., inner_pixels], rtol=1e-10, atol=1e-10)
    covered = torch.nn.functional.max_pool2d(chosen.float()[None, None], 3, stride=1, padding=1)[0, 0] > 0.5
    untouched = (~covered).repeat_interleave(2, 0).repeat_interleave(2, 1)
    assert torch.equal(near[..., untouched], features[..., untouched])


def test_rate_four_equals_the_naive_reference():
    features, hole = random_case(2, batch=1, height=16, width=16)
    expected, _ = naive_contextual_attention(features, hole, rate=4)
    torch.testing.assert_close(contextual_attention(features, hole, rate=4)[0], expected, rtol=1e-9, atol=1e-9)
    torch.testing.assert_close(contextual_attention(features, hole, rate=4, block=(3, 2))[0], expected, rtol=1e-9, atol=1e-9)


def test_each_sample_uses_its_own_mask():
    features, hole = random_case(3)
    together, _ = contextual_attention(features, hole)
    for b in range(2):
        alone, _ = contextual_attention(features[b : b + 1], hole[b : b + 1])
        torch.testing.assert_close(together[b : b + 1], alone, rtol=1e-12, atol=1e-12)


def test_a_sample_without_background_passes_its_features_through():
    features, hole = random_case(4)
    hole[1] = 1
    out, offsets = contextual_attention(features, hole)
    assert torch.equal(out[1], features[1])
    assert torch.equal(offsets[1], torch.zeros_like(offsets[1]))
    assert torch.isfinite(out).all()


def test_attention_copies_only_from_the_background():
    """With a constant background and anything in the hole, every output is that constant (borders too)."""
    generator = torch.Generator().manual_seed(5)
    value = torch.tensor([0.3, -1.2, 2.0], dtype=torch.float64).view(1, 3, 1, 1)
    features = value.expand(2, 3, 16, 16).clone()
    hole = torch.zeros((2, 1, 16, 16), dtype=torch.float64)
    hole[0, :, 4:10, 5:12] = 1
    hole[1, :, 2:8, 2:14] = 1
    features = torch.where(hole > 0, torch.randn(features.shape, generator=generator, dtype=torch.float64) * 50, features)
    for block in (None, (5, 3)):
        out, _ = contextual_attention(features, hole, block=block)
        torch.testing.assert_close(out, value.expand(2, 3, 16, 16), rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("blocked", [False, True])
def test_gradients_match_finite_differences(blocked):
    features, hole = random_case(6, batch=2, channels=2, height=8, width=8)
    features.requires_grad_(True)
    block = (5, 3) if blocked else None
    assert torch.autograd.gradcheck(lambda f: contextual_attention(f, hole, softmax_scale=2.0, block=block)[0], (features,), eps=1e-6, atol=1e-5)


def test_fusion_sums_diagonal_neighbours():
    scores = torch.zeros((1, 3, 3, 3, 3))
    scores[0, 1, 1, 1, 1] = 1.0  # key (1, 1), query (1, 1)
    fused = fuse_scores(scores)
    # (k, q) receives scores[k + d, q + d]: the entry reaches (k, q) = ((1, 1) - d, (1, 1) - d) for every d.
    for dy in (-1, 0, 1):
        for dx in (-1, 0, 1):
            assert fused[0, 1 - dy, 1 - dx, 1 - dy, 1 - dx] == 1.0
    assert fused.sum() == 9.0
    shifted = torch.zeros((1, 3, 3, 3, 3))
    shifted[0, 0, 0, 2, 2] = 1.0  # key (0, 0), query (2, 2): d = (1, 1) reaches beyond the map for the key side only
    assert fuse_scores(shifted).sum() == 1.0  # only d = 0: (k - d) leaves the key grid or (q - d) the query grid


def test_layer_runs_under_bf16_autocast_in_float32():
    features, hole = random_case(7)
    layer = ContextualAttention()
    with torch.autocast("cpu", dtype=torch.bfloat16):
        out = layer(features.to(torch.bfloat16), hole)
    assert out.dtype == torch.bfloat16
    expected, _ = contextual_attention(features.to(torch.bfloat16).float(), hole.float())
    torch.testing.assert_close(out.float(), expected, rtol=2e-2, atol=2e-2)


MEMORY_PROBE = """
import resource, sys, torch
from restore.nn.contextual_attention import ContextualAttention
torch.set_num_threads(1)
features = torch.randn((1, 8, 256, 256)); hole = torch.zeros((1, 1, 256, 256)); hole[..., 80:170, 60:200] = 1
layer = ContextualAttention(max_scores=2**20)
with torch.no_grad():
    layer(features[..., :32, :32], hole[..., :32, :32])  # load the kernels and the allocator first
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    out = layer(features, hole)
    after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
assert torch.isfinite(out).all()
print((after - before) * 1024)
"""


def test_memory_of_the_blocked_form_does_not_grow_with_the_square_of_the_area():
    """A 128×128 grid: the full score volume is 268 M values (1 GiB); the blocked form stays near its budget."""
    import subprocess
    import sys

    result = subprocess.run([sys.executable, "-c", MEMORY_PROBE], capture_output=True, text=True, timeout=300, check=True)
    grown = int(result.stdout.split()[-1])
    full_volume = 4 * (128 * 128) ** 2
    assert grown < 150 * 2**20, f"peak RSS grew {grown / 2**20:.0f} MiB"
    assert grown < full_volume / 6


def test_bad_inputs_name_the_problem():
    with pytest.raises(ValueError, match="multiples of rate"):
        contextual_attention(torch.zeros(1, 2, 5, 6), torch.zeros(1, 1, 5, 6))
    with pytest.raises(ValueError, match="even"):
        ContextualAttention(rate=3)
    with pytest.raises(ValueError, match="same B, H, W"):
        contextual_attention(torch.zeros(1, 2, 6, 6), torch.zeros(1, 1, 4, 6))


def test_softmax_scale_sharpens_towards_the_best_key():
    features, hole = random_case(8, batch=1, height=16, width=16)
    soft, _ = contextual_attention(features, hole, softmax_scale=0.1)
    sharp, offsets = contextual_attention(features, hole, softmax_scale=1000.0)
    assert not torch.allclose(soft, sharp)
    assert math.isfinite(float(sharp.sum()))
    assert offsets.abs().max() > 0
