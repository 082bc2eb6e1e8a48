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
  in blocks (each with its 3×3 neighbours, for the fusion) and keys in blocks of rows, with a
  streaming ("online") softmax, so memory grows with the map's area, not its square (the
  reference implementations hold the full (H·W)² volume: ~24 GB at 1920×1080 on CPU,
  generative_inpainting#144); the map is not copied whole (float32 only for the down-scaled
  queries and keys, the paste accumulated in place);
* for inference, ``query_margin`` attends only from the positions near a hole: the others
  cannot reach the fill (the caller knows how far its decoder carries them) and keep their
  features.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

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

    def forward(self, features: Tensor, hole: Tensor, return_offsets: bool = False, query_margin: int | None = None) -> Tensor | tuple[Tensor, Tensor]:
        """Attend (``query_margin``: only from queries within that many grid cells of a hole; see :func:`contextual_attention`)."""
        # Scores and softmax in float32 always (float64 for float64 maps); under bfloat16 autocast the
        # paste's product and the output stay in bfloat16, and the map itself is never copied whole.
        paste_dtype = torch.bfloat16 if features.dtype == torch.bfloat16 else None
        with torch.autocast(features.device.type, enabled=False):
            out, offsets = contextual_attention(
                features, hole.float(), rate=self.rate, softmax_scale=self.softmax_scale, fuse=self.fuse,
                max_scores=self.max_scores, paste_dtype=paste_dtype, query_margin=query_margin,
            )  # fmt: skip
        out = out.to(features.dtype)
        return (out, offsets) if return_offsets else out

    def extra_repr(self) -> str:
        return f"rate={self.rate}, softmax_scale={self.softmax_scale}, fuse={self.fuse}, max_scores={self.max_scores}"


def contextual_attention(
    features: Tensor, hole: Tensor, rate: int = 2, softmax_scale: float = 10.0, fuse: bool = True,
    max_scores: int = DEFAULT_MAX_SCORES, block: tuple[int, int] | None = None, paste_dtype: torch.dtype | None = None,
    query_margin: int | None = None,
) -> tuple[Tensor, Tensor]:
    """The layer as a function (see :class:`ContextualAttention` and the module docstring).

    Args:
        features: the map both queried and pasted from.
        hole: 1 = hole, at the features' resolution.
        rate, softmax_scale, fuse, max_scores: as the layer's.
        block: force the blocked computation with (queries, key rows) per block of the
            down-scaled grid (tests; None picks the full volume when it fits ``max_scores``).
        paste_dtype: dtype of the paste's matrix product and of the blocked form's output (None:
            the features' dtype, at least float32); scores and the softmax are always in the
            features' dtype promoted to at least float32.
        query_margin: attend only from queries within this many grid cells of a hole cell of
            any sample (None: every query). Elsewhere the output is the input: for inference,
            where only what reaches the hole matters.

    Returns:
        The attended map (in ``paste_dtype`` when blocked) and the best key's offset of each
        query (0 for queries not attended).

    Shape:
        features: (B, C, H, W); hole: (B, 1, H, W); returns (B, C, H, W) and (B, 2, H/rate, W/rate).
    """
    if features.dim() != 4 or hole.dim() != 4 or hole.shape[1] != 1 or hole.shape[0] != features.shape[0] or hole.shape[-2:] != features.shape[-2:]:
        raise ValueError(f"features must be (B, C, H, W) and hole (B, 1, H, W) of the same B, H, W; got {tuple(features.shape)} and {tuple(hole.shape)}")
    if rate < 2 or rate % 2:
        raise ValueError(f"rate must be even and >= 2, got {rate}")
    height, width = features.shape[-2:]
    if height % rate or width % rate:
        raise ValueError(f"the feature map's sides must be multiples of rate={rate}, got {height}x{width}")
    exact = torch.promote_types(features.dtype, torch.float32)
    small = features[:, :, ::rate, ::rate].to(exact)
    cell_hole = F.max_pool2d(hole.to(exact), rate)
    usable = usable_keys(cell_hole[:, 0] < 0.5, PATCH)  # (B, L)
    batch, _, rows, cols = small.shape
    dtype = paste_dtype or exact
    if query_margin is None and block is None and batch * (rows * cols) ** 2 <= max_scores:
        out, best = _attend_full(features.to(exact), small, usable, rate, softmax_scale, fuse, dtype)
    else:
        if query_margin is None:
            queries = torch.arange(rows * cols, device=features.device)
        else:
            near = F.max_pool2d(cell_hole.amax(dim=0, keepdim=True), 2 * query_margin + 1, stride=1, padding=query_margin)
            queries = torch.nonzero(near.flatten() > 0.5).flatten()
        per_block, key_rows = block if block is not None else _block_sizes(batch, rows, cols, max_scores)
        out, best = _attend_blocked(features, small, usable, queries, rate, softmax_scale, fuse, per_block, key_rows, dtype)
    has_key = usable.any(dim=1)
    if not bool(has_key.all()):  # a sample without background keeps its features
        out = torch.where(has_key.view(-1, 1, 1, 1), out, features.to(out.dtype))
    offsets = _offsets(best, rows, cols) * has_key.view(-1, 1, 1, 1)
    return out, offsets


def _block_sizes(batch: int, rows: int, cols: int, max_scores: int) -> tuple[int, int]:
    """(queries, key rows) per block so that a block's scores, halos included, stay within ``max_scores``."""
    per_key_row = batch * (cols + 2) * 10  # a fused block holds about ten values per key and query
    queries = max_scores // (per_key_row * (rows + 2))
    if queries >= 4 * cols:
        return queries, rows
    queries = 4 * cols
    return queries, max(1, max_scores // (per_key_row * queries) - 2)


def _offsets(best: Tensor, rows: int, cols: int) -> Tensor:
    """Flat best-key indices (B, L) -> (dy, dx) offsets (B, 2, rows, cols) on the down-scaled grid."""
    positions = torch.arange(rows * cols, device=best.device)
    dy = best.div(cols, rounding_mode="floor") - positions.div(cols, rounding_mode="floor")
    dx = best.remainder(cols) - positions.remainder(cols)
    return torch.stack([dy, dx], dim=1).view(best.shape[0], 2, rows, cols)


def fuse_scores(scores: Tensor) -> Tensor:
    """Propagate scores over 3×3 neighbourhoods: ``out[k, q] = Σ_d scores[k + d, q + d]`` (zero beyond the map).

    The 3×3 sum factorises into a pass along x and one along y (four strided adds in all).

    Shape:
        scores: (B, Hk, Wk, Hq, Wq), keys then queries; returns the same shape.
    """
    along_x = scores.clone()
    along_x[:, :, 1:, :, 1:] += scores[:, :, :-1, :, :-1]
    along_x[:, :, :-1, :, :-1] += scores[:, :, 1:, :, 1:]
    out = along_x.clone()
    out[:, 1:, :, 1:] += along_x[:, :-1, :, :-1]
    out[:, :-1, :, :-1] += along_x[:, 1:, :, 1:]
    return out


def _overlap(rows: int, cols: int, rate: int, like: Tensor) -> Tensor:
    """How many pasted patches cover each full-resolution position. Shape: (1, 1, rows·rate, cols·rate)."""
    ones = like.new_ones((1, (2 * rate) ** 2, rows * cols))
    return F.fold(ones, (rows * rate, cols * rate), 2 * rate, stride=rate, padding=rate // 2)


def _attend_full(features: Tensor, small: Tensor, usable: Tensor, rate: int, scale: float, fuse: bool,
                 paste_dtype: torch.dtype) -> tuple[Tensor, Tensor]:
    """The whole (B, L, L) score volume at once (small maps, and training)."""
    batch, channels, rows, cols = small.shape
    scores = patch_similarity(small, small, torch.ones_like(small[:, 0], dtype=torch.bool), PATCH)  # (B, L, rows, cols)
    if fuse:
        scores = fuse_scores(scores.view(batch, rows, cols, rows, cols))
    logits = (scale * scores.reshape(batch, rows * cols, rows * cols)).masked_fill(~usable.unsqueeze(2), float("-inf"))
    best = logits.argmax(dim=1)
    attention = torch.softmax(logits, dim=1).nan_to_num(0.0)  # a sample without usable keys: zeros (gated later)
    patches = F.unfold(_replicate_edges(features, rate), 2 * rate, stride=rate)  # (B, C·(2r)², L)
    columns = torch.bmm(patches.to(paste_dtype), attention.to(paste_dtype)).to(features.dtype)
    pasted = F.fold(columns, features.shape[-2:], 2 * rate, stride=rate, padding=rate // 2)
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


def _normalised(patches: Tensor) -> Tensor:
    return patches / torch.linalg.vector_norm(patches, dim=-1, keepdim=True).clamp_min(NORM_FLOOR)


def _key_patches(small: Tensor, start: int, stop: int) -> Tensor:
    """Normalised 3×3 patches of grid rows ``start``-1 to ``stop``+1 (zero rows beyond the grid).

    Shape:
        small: (B, C, rows, cols); returns (B, (stop - start + 2)·cols, C·9).
    """
    rows, cols = small.shape[-2:]
    patches = _normalised(F.unfold(_rows_with_halo(small, start, stop, 2), PATCH, padding=(0, 1)).transpose(1, 2))
    outside = torch.zeros(stop - start + 2, dtype=torch.bool, device=small.device)
    outside[0], outside[-1] = start == 0, stop == rows
    return patches.masked_fill(outside.repeat_interleave(cols).view(1, -1, 1), 0.0)


def _query_patches(small: Tensor, positions: Tensor) -> Tensor:
    """Normalised 3×3 patches (zero padded) centred on flat grid ``positions``.

    Shape:
        small: (B, C, rows, cols); positions: (N,); returns (B, N, C·9), features ordered (c, dy, dx).
    """
    batch, channels, rows, cols = small.shape
    padded = F.pad(small, (1, 1, 1, 1)).flatten(2)  # (B, C, (rows + 2)(cols + 2))
    y, x = positions.div(cols, rounding_mode="floor") + 1, positions.remainder(cols) + 1
    taps = [(y + dy) * (cols + 2) + (x + dx) for dy in (-1, 0, 1) for dx in (-1, 0, 1)]
    gathered = padded[:, :, torch.stack(taps, dim=1).flatten()]  # (B, C, N·9)
    return _normalised(gathered.view(batch, channels, -1, 9).permute(0, 2, 1, 3).reshape(batch, -1, channels * 9))


def _neighbourhoods(positions: Tensor, rows: int, cols: int) -> tuple[Tensor, Tensor]:
    """The positions and their 8 neighbours (in the map), and where each ``q + d`` sits among them.

    Returns:
        ``(extended, lookup)``: sorted unique flat positions (N'), and (9, N) indices into them,
        N' (a zero column) where ``q + d`` leaves the map; ``d`` in raster order of the 3×3 offsets.
    """
    y, x = positions.div(cols, rounding_mode="floor"), positions.remainder(cols)
    shifted, inside = [], []
    for dy in (-1, 0, 1):
        for dx in (-1, 0, 1):
            yy, xx = y + dy, x + dx
            inside.append((yy >= 0) & (yy < rows) & (xx >= 0) & (xx < cols))
            shifted.append(yy.clamp(0, rows - 1) * cols + xx.clamp(0, cols - 1))
    shifted_all, inside_all = torch.stack(shifted), torch.stack(inside)
    extended, inverse = torch.unique(shifted_all[inside_all], return_inverse=True)
    lookup = torch.full_like(shifted_all, extended.numel())
    lookup[inside_all] = inverse
    return extended, lookup


def _key_block(small: Tensor, features: Tensor, start: int, stop: int, rate: int, paste_dtype: torch.dtype) -> tuple[Tensor, Tensor]:
    """Grid rows ``start`` to ``stop``: normalised 3×3 key patches (one halo row each side) and the
    ``2·rate``-sided patches they paste, whose parts beyond the map repeat its edge.

    Shape:
        returns (B, (stop - start + 2)·cols, C·9) and (B, C·(2·rate)², (stop - start)·cols).
    """
    pad, height = rate // 2, features.shape[-2]
    top, bottom = start * rate - pad, stop * rate + pad
    rows = features[..., max(top, 0) : min(bottom, height), :]
    rows = F.pad(rows.to(paste_dtype), (pad, pad, max(0, -top), max(0, bottom - height)), mode="replicate")
    return _key_patches(small, start, stop), F.unfold(rows, 2 * rate, stride=rate)


def _attend_blocked(features: Tensor, small: Tensor, usable: Tensor, queries: Tensor, rate: int, scale: float, fuse: bool,
                    per_block: int, key_rows: int, paste_dtype: torch.dtype) -> tuple[Tensor, Tensor]:
    """Blocks of the chosen queries × blocks of key rows with a streaming softmax; the scores are never whole.

    Positions no chosen query pastes onto keep their features. The output is in ``paste_dtype``.
    """
    batch, channels, rows, cols = small.shape
    height, width = features.shape[-2:]
    side = 2 * rate
    pasted = features.new_zeros((batch, channels, height * width), dtype=paste_dtype)
    covered = small.new_zeros((1, 1, height * width))
    best = torch.arange(rows * cols, device=features.device).repeat(batch, 1)  # offset 0 for queries not attended
    taps = torch.arange(side, device=features.device) - rate // 2  # a patch's rows (columns) around its cell's corner
    # With every key in one block (all but the largest maps), its patches are made once.
    key_blocks = {0: _key_block(small, features, 0, rows, rate, paste_dtype)} if key_rows >= rows and queries.numel() > per_block else {}
    for first in range(0, queries.numel(), per_block):
        chosen = queries[first : first + per_block]
        count = chosen.numel()
        if fuse:
            extended, lookup = _neighbourhoods(chosen, rows, cols)
            query_patches = _query_patches(small, extended)
        else:
            query_patches = _query_patches(small, chosen)
        top = features.new_full((batch, count, 1), float("-inf"))
        total = features.new_zeros((batch, count, 1))
        accumulated = features.new_zeros((batch, channels * side * side, count))
        best_logit = features.new_full((batch, count), float("-inf"))
        for k0 in range(0, rows, key_rows):
            k1 = min(k0 + key_rows, rows)
            keys, patches = key_blocks[k0] if k0 in key_blocks else _key_block(small, features, k0, k1, rate, paste_dtype)
            if fuse:
                # Queries first: each offset d picks whole rows (q + d) and shifts the key grid by d.
                scores = torch.bmm(query_patches, keys.transpose(1, 2)).view(batch, -1, k1 - k0 + 2, cols)
                scores = F.pad(scores, (1, 1, 0, 0, 0, 1))  # zero key columns beyond x, a zero row for q + d beyond the map
                fused = scores.new_zeros((batch, count, k1 - k0, cols))
                for index, (dy, dx) in enumerate((dy, dx) for dy in (-1, 0, 1) for dx in (-1, 0, 1)):
                    fused += scores.index_select(1, lookup[index])[:, :, 1 + dy : 1 + dy + k1 - k0, 1 + dx : 1 + dx + cols]
                block_scores = fused.view(batch, count, (k1 - k0) * cols)
            else:
                block_scores = torch.bmm(query_patches, keys[:, cols:-cols].transpose(1, 2))
            logits = (scale * block_scores).masked_fill(~usable[:, None, k0 * cols : k1 * cols], float("-inf"))
            block_best, block_index = logits.max(dim=2)
            better = block_best > best_logit
            best[:, chosen] = torch.where(better, block_index + k0 * cols, best[:, chosen])
            best_logit = torch.where(better, block_best, best_logit)
            new_top = torch.maximum(top, block_best.unsqueeze(2))
            safe_top = new_top.masked_fill(torch.isinf(new_top), 0.0)
            weights = torch.exp(logits - safe_top)
            decay = torch.exp(top - safe_top)
            total = total * decay + weights.sum(dim=2, keepdim=True)
            product = torch.bmm(patches.to(paste_dtype), weights.transpose(1, 2).to(paste_dtype)).to(accumulated.dtype)
            accumulated = accumulated * decay.transpose(1, 2) + product
            top = new_top
        columns = accumulated / total.clamp_min(torch.finfo(total.dtype).tiny).transpose(1, 2)
        # Each query's patch, pixel by pixel (the columns' order), onto the pixels inside the map.
        ys = chosen.div(cols, rounding_mode="floor").view(1, 1, -1) * rate + taps.view(-1, 1, 1)
        xs = chosen.remainder(cols).view(1, 1, -1) * rate + taps.view(1, -1, 1)
        inside = ((ys >= 0) & (ys < height) & (xs >= 0) & (xs < width)).flatten()
        targets = (ys * width + xs).flatten()[inside]
        pasted.index_add_(2, targets, columns.view(batch, channels, -1)[:, :, inside].to(paste_dtype))
        covered.index_add_(2, targets, covered.new_ones((1, 1, targets.numel())))
    # In place: the average of the pastes where there are some, the features elsewhere.
    pasted = pasted.view(batch, channels, height, width)
    covered = covered.view(1, 1, height, width)
    reached = (covered > 0).to(paste_dtype)
    pasted.div_(covered.clamp_min(1.0).to(paste_dtype)).mul_(reached).addcmul_(features.to(paste_dtype), 1 - reached)
    out = pasted
    return out, best
