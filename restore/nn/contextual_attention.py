"""Contextual attention (DeepFill v1, Yu et al. 2018, §3.2) at any resolution, in bounded memory.

Every position of a feature map attends to the fully known 3×3 background patches of the
same map, down-scaled by ``rate``: scores are cosine similarities (:func:`restore.ops.patch_similarity`),
propagated over a 3×3 neighbourhood ("fusion": the score of query ``q`` for key ``k`` becomes
the sum of the scores of ``(q + d, k + d)`` over the 3×3 offsets ``d``, so neighbouring queries
agree on neighbouring keys), scaled by ``softmax_scale`` and normalised over the usable keys.
The output pastes, for each query, the attention-weighted sum of the keys' ``2·rate``-sided
patches of the *full-resolution* map, overlapping at stride ``rate`` and divided by the exact
overlap count.

Where we depart from the reference code, and why:

* each sample uses its own mask (the TF code used the first mask of the batch for every image);
* queries are normalised too (the paper's cosine similarity; the code normalised keys only);
* unusable keys get −∞ before the softmax (the code multiplied their scores by 0, so they
  still took a share); a sample without any usable key passes its features through;
* the fusion shifts in two dimensions and stops at the map's edges (the code's flattened
  shifts wrapped from the end of one row to the start of the next);
* pasted patches are divided by their exact overlap count, and the parts of a border key's
  patch beyond the map repeat its edge (the code pasted zero padding and divided by 4, which
  darkens the border row and column);
* a key is background only when its whole ``rate``² cell is known (max-pooled mask; the code
  sampled one pixel per cell, so a cell half in the hole could be copied);
* beyond ``max_scores`` similarity values the scores are never held whole: queries are taken
  in blocks of rows and keys in blocks of rows with a streaming ("online") softmax, so memory
  grows with the map's area, not its square (the reference implementations hold the full
  (H·W)² volume: ~24 GB at 1920×1080 on CPU, generative_inpainting#144).
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from restore.nn.precision import float32_region
from restore.ops import patch_similarity
from restore.ops._ext import NORM_FLOOR
from restore.ops.patch_similarity import usable_keys

__all__ = ["ContextualAttention", "contextual_attention"]

#: Similarity values held at once before the layer switches to blocks (64 MB in float32).
DEFAULT_MAX_SCORES = 2**24
PATCH = 3


class ContextualAttention(nn.Module):
    """DeepFill v1's contextual attention layer (no parameters).

    Args:
        rate: keys are taken from the map down-scaled by this factor and pasted back as
            ``2·rate``-sided patches at stride ``rate`` (paper: 2).
        softmax_scale: the softmax's inverse temperature (paper: 10).
        fuse: propagate the scores over 3×3 neighbourhoods (paper: yes).
        max_scores: largest number of similarity values held at once; larger problems are
            computed in blocks (same result, bounded memory).

    Shape:
        features: (B, C, H, W), H and W multiples of ``rate``; hole: (B, 1, H, W), 1 = hole.
        Returns (B, C, H, W), and with ``return_offsets`` also (B, 2, H/rate, W/rate): for each
        query, (dy, dx) to its best key on the down-scaled grid (0 where it has none).
    """

    def __init__(self, rate: int = 2, softmax_scale: float = 10.0, fuse: bool = True, max_scores: int = DEFAULT_MAX_SCORES) -> None:
        super().__init__()
        if rate < 2 or rate % 2:
            raise ValueError(f"rate must be even and >= 2 (pasted patches are 2·rate wide, centred), got {rate}")
        if max_scores < 1:
            raise ValueError(f"max_scores must be >= 1, got {max_scores}")
        self.rate = rate
        self.softmax_scale = softmax_scale
        self.fuse = fuse
        self.max_scores = max_scores

    def forward(self, features: Tensor, hole: Tensor, return_offsets: bool = False) -> Tensor | tuple[Tensor, Tensor]:
        out, offsets = float32_region(
            contextual_attention, features, hole.to(features.dtype),
            rate=self.rate, softmax_scale=self.softmax_scale, fuse=self.fuse, max_scores=self.max_scores,
        )  # fmt: skip
        out = out.to(features.dtype)
        return (out, offsets) if return_offsets else out

    def extra_repr(self) -> str:
        return f"rate={self.rate}, softmax_scale={self.softmax_scale}, fuse={self.fuse}, max_scores={self.max_scores}"


def contextual_attention(
    features: Tensor, hole: Tensor, rate: int = 2, softmax_scale: float = 10.0, fuse: bool = True,
    max_scores: int = DEFAULT_MAX_SCORES, block_rows: tuple[int, int] | None = None,
) -> tuple[Tensor, Tensor]:
    """The layer as a function (see :class:`ContextualAttention` and the module docstring).

    Args:
        features: the map both queried and pasted from.
        hole: 1 = hole, at the features' resolution.
        rate, softmax_scale, fuse, max_scores: as the layer's.
        block_rows: force the blocked computation with these (query rows, key rows) per block
            of the down-scaled grid (tests; None picks the full volume when it fits ``max_scores``).

    Returns:
        The attended map and the best key's offset of each query.

    Shape:
        features: (B, C, H, W); hole: (B, 1, H, W); returns (B, C, H, W) and (B, 2, H/rate, W/rate).
    """
    if features.dim() != 4 or hole.dim() != 4 or hole.shape[1] != 1 or hole.shape[0] != features.shape[0] or hole.shape[-2:] != features.shape[-2:]:
        raise ValueError(f"features must be (B, C, H, W) and hole (B, 1, H, W) of the same B, H, W; got {tuple(features.shape)} and {tuple(hole.shape)}")
    height, width = features.shape[-2:]
    if height % rate or width % rate:
        raise ValueError(f"the feature map's sides must be multiples of rate={rate}, got {height}x{width}")
    small = features[:, :, ::rate, ::rate]
    if rate < 2 or rate % 2:
        raise ValueError(f"rate must be even and >= 2, got {rate}")
    known = F.max_pool2d(hole, rate) < 0.5
    usable = usable_keys(known[:, 0], PATCH)  # (B, L)
    batch, _, rows, cols = small.shape
    if block_rows is None and batch * (rows * cols) ** 2 <= max_scores:
        out, best = _attend_full(features, small, usable, rate, softmax_scale, fuse)
    else:
        query_rows, key_rows = block_rows if block_rows is not None else _block_rows(batch, rows, cols, max_scores)
        out, best = _attend_blocked(features, small, usable, rate, softmax_scale, fuse, query_rows, key_rows)
    has_key = usable.any(dim=1)
    gate = has_key.to(out.dtype).view(-1, 1, 1, 1)
    out = out * gate + features * (1 - gate)
    offsets = _offsets(best, rows, cols) * has_key.view(-1, 1, 1, 1)
    return out, offsets


def _block_rows(batch: int, rows: int, cols: int, max_scores: int) -> tuple[int, int]:
    """(query rows, key rows) per block so that a block's scores, halos included, stay within ``max_scores``."""
    per_row_pair = batch * cols * cols
    query_rows = max(1, max_scores // (per_row_pair * (rows + 2)) - 2)
    if query_rows >= 4:
        return min(query_rows, rows), rows
    query_rows = min(4, rows)
    key_rows = max(1, max_scores // (per_row_pair * (query_rows + 2)) - 2)
    return query_rows, min(key_rows, rows)


def _offsets(best: Tensor, rows: int, cols: int) -> Tensor:
    """Flat best-key indices (B, L) -> (dy, dx) offsets (B, 2, rows, cols) on the down-scaled grid."""
    positions = torch.arange(rows * cols, device=best.device)
    dy = best.div(cols, rounding_mode="floor") - positions.div(cols, rounding_mode="floor")
    dx = best.remainder(cols) - positions.remainder(cols)
    return torch.stack([dy, dx], dim=1).view(best.shape[0], 2, rows, cols)


def fuse_scores(scores: Tensor) -> Tensor:
    """Propagate scores over 3×3 neighbourhoods: ``out[k, q] = Σ_d scores[k + d, q + d]`` (zero beyond the map).

    Shape:
        scores: (B, Hk, Wk, Hq, Wq), keys then queries; returns the same shape.
    """
    padded = F.pad(scores, (1, 1, 1, 1, 1, 1, 1, 1))
    hk, wk, hq, wq = scores.shape[1:]
    out = torch.zeros_like(scores)
    for dy in (-1, 0, 1):
        for dx in (-1, 0, 1):
            out = out + padded[:, 1 + dy : 1 + dy + hk, 1 + dx : 1 + dx + wk, 1 + dy : 1 + dy + hq, 1 + dx : 1 + dx + wq]
    return out


def _overlap(rows: int, cols: int, rate: int, like: Tensor) -> Tensor:
    """How many pasted patches cover each full-resolution position. Shape: (1, 1, rows·rate, cols·rate)."""
    ones = like.new_ones((1, (2 * rate) ** 2, rows * cols))
    return F.fold(ones, (rows * rate, cols * rate), 2 * rate, stride=rate, padding=rate // 2)


def _attend_full(features: Tensor, small: Tensor, usable: Tensor, rate: int, scale: float, fuse: bool) -> tuple[Tensor, Tensor]:
    """The whole (B, L, L) score volume at once (small maps, and training)."""
    batch, channels, rows, cols = small.shape
    scores = patch_similarity(small, small, torch.ones_like(small[:, 0], dtype=torch.bool), PATCH)  # (B, L, rows, cols)
    if fuse:
        scores = fuse_scores(scores.view(batch, rows, cols, rows, cols))
    logits = (scale * scores.reshape(batch, rows * cols, rows * cols)).masked_fill(~usable.unsqueeze(2), float("-inf"))
    best = logits.argmax(dim=1)
    attention = torch.softmax(logits, dim=1).nan_to_num(0.0)  # a sample without usable keys: zeros (gated later)
    patches = F.unfold(_replicate_edges(features, rate), 2 * rate, stride=rate)  # (B, C·(2r)², L)
    pasted = F.fold(torch.bmm(patches, attention), features.shape[-2:], 2 * rate, stride=rate, padding=rate // 2)
    return pasted / _overlap(rows, cols, rate, features), best


def _replicate_edges(features: Tensor, rate: int) -> Tensor:
    """The map with rate/2 rows and columns repeated at every edge: the pasted patches of keys on the
    border reach that far, and repeat the border instead of pasting zeros. Shape: (B, C, H + rate, W + rate)."""
    pad = rate // 2
    return F.pad(features, (pad, pad, pad, pad), mode="replicate")


def _rows_with_halo(x: Tensor, start: int, stop: int, halo: int) -> Tensor:
    """Rows ``start - halo`` to ``stop + halo`` of ``x``, zero beyond its edges. Shape: (B, C, stop - start + 2·halo, W)."""
    height = x.shape[-2]
    low, high = max(start - halo, 0), min(stop + halo, height)
    return F.pad(x[..., low:high, :], (0, 0, low - (start - halo), (stop + halo) - high))


def _unit_patches(small: Tensor, start: int, stop: int) -> Tensor:
    """Normalised 3×3 patches of grid rows ``start``-1 to ``stop``+1 (zero rows beyond the grid).

    Shape:
        small: (B, C, rows, cols); returns (B, (stop - start + 2)·cols, C·9).
    """
    rows = small.shape[-2]
    segment = _rows_with_halo(small, start, stop, 2)
    patches = F.unfold(segment, PATCH, padding=(0, 1)).transpose(1, 2)
    patches = patches / torch.linalg.vector_norm(patches, dim=-1, keepdim=True).clamp_min(NORM_FLOOR)
    cols = small.shape[-1]
    outside = torch.zeros(stop - start + 2, dtype=torch.bool, device=small.device)
    outside[0], outside[-1] = start == 0, stop == rows
    return patches.masked_fill(outside.repeat_interleave(cols).view(1, -1, 1), 0.0)


def _attend_blocked(features: Tensor, small: Tensor, usable: Tensor, rate: int, scale: float, fuse: bool,
                    query_rows: int, key_rows: int) -> tuple[Tensor, Tensor]:
    """Blocks of query rows × blocks of key rows with a streaming softmax; the scores are never whole."""
    batch, _, rows, cols = small.shape
    height, width = features.shape[-2:]
    side = 2 * rate
    # Pasted patches reach rate/2 beyond every edge: the buffer has that margin, cropped at the end.
    out = features.new_zeros((batch, features.shape[1], height + rate, width + rate))
    best = torch.zeros((batch, rows * cols), dtype=torch.long, device=features.device)
    source = _replicate_edges(features, rate)
    for q0 in range(0, rows, query_rows):
        q1 = min(q0 + query_rows, rows)
        queries = _unit_patches(small, q0, q1) if fuse else _unit_patches(small, q0, q1)[:, cols:-cols]
        count = (q1 - q0) * cols
        top = features.new_full((batch, count), float("-inf"))
        total = features.new_zeros((batch, count))
        accumulated = features.new_zeros((batch, features.shape[1] * side * side, count))
        best_logit = features.new_full((batch, count), float("-inf"))
        for k0 in range(0, rows, key_rows):
            k1 = min(k0 + key_rows, rows)
            keys = _unit_patches(small, k0, k1) if fuse else _unit_patches(small, k0, k1)[:, cols:-cols]
            scores = torch.bmm(keys, queries.transpose(1, 2))
            if fuse:
                scores = _fuse_block(scores.view(batch, k1 - k0 + 2, cols, q1 - q0 + 2, cols))
            logits = (scale * scores.reshape(batch, (k1 - k0) * cols, count)).masked_fill(
                ~usable[:, k0 * cols : k1 * cols].unsqueeze(2), float("-inf"))
            block_best, block_index = logits.max(dim=1)
            better = block_best > best_logit
            best[:, q0 * cols : q1 * cols] = torch.where(better, block_index + k0 * cols, best[:, q0 * cols : q1 * cols])
            best_logit = torch.where(better, block_best, best_logit)
            new_top = torch.maximum(top, block_best)
            safe_top = new_top.masked_fill(torch.isinf(new_top), 0.0)
            weights = torch.exp(logits - safe_top.unsqueeze(1))
            decay = torch.exp(top - safe_top)
            total = total * decay + weights.sum(dim=1)
            patches = F.unfold(source[..., k0 * rate : k1 * rate + rate, :], side, stride=rate)
            accumulated = accumulated * decay.unsqueeze(1) + torch.bmm(patches, weights)
            top = new_top
        columns = accumulated / total.clamp_min(torch.finfo(total.dtype).tiny).unsqueeze(1)
        pasted = F.fold(columns, ((q1 - q0 - 1) * rate + side, width + rate), side, stride=rate)
        out[:, :, q0 * rate : q0 * rate + pasted.shape[-2]] += pasted
    pad = rate // 2
    out = out[:, :, pad : pad + height, pad : pad + width]
    return out / _overlap(rows, cols, rate, features), best


def _fuse_block(scores: Tensor) -> Tensor:
    """:func:`fuse_scores` for a block whose key and query rows carry a one-row halo each.

    Shape:
        scores: (B, Kr + 2, W, Qr + 2, W); returns (B, Kr, W, Qr, W).
    """
    padded = F.pad(scores, (1, 1, 0, 0, 1, 1))
    key_rows, cols, query_rows = scores.shape[1] - 2, scores.shape[2], scores.shape[3] - 2
    out = scores.new_zeros((scores.shape[0], key_rows, cols, query_rows, cols))
    for dy in (-1, 0, 1):
        for dx in (-1, 0, 1):
            out = out + padded[:, 1 + dy : 1 + dy + key_rows, 1 + dx : 1 + dx + cols, 1 + dy : 1 + dy + query_rows, 1 + dx : 1 + dx + cols]
    return out


def memory_bound(height: int, width: int, channels: int, rate: int = 2, max_scores: int = DEFAULT_MAX_SCORES) -> dict[str, float]:
    """Float32 bytes the scores take at once for one sample: blocked form against the full volume."""
    positions = math.ceil(height / rate) * math.ceil(width / rate)
    return {"full_volume": 4.0 * positions**2, "blocked": 4.0 * min(max_scores, positions**2), "features": 4.0 * channels * height * width}
