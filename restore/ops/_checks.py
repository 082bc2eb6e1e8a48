"""Validation shared by the public ops and their references.

Errors follow the C++ side (``TORCH_CHECK_VALUE`` / ``TORCH_CHECK_TYPE``): a wrong
shape or device raises ``ValueError``, a wrong dtype ``TypeError``.
"""

from __future__ import annotations

import torch


def check_features(name: str, x: torch.Tensor) -> None:
    """Require a floating (B, C, H, W) tensor."""
    if not isinstance(x, torch.Tensor):
        raise TypeError(f"{name} must be a torch.Tensor, got {type(x).__name__}")
    if x.dim() != 4:
        raise ValueError(f"{name} must be 4-D (B, C, H, W), got shape {tuple(x.shape)}")
    if not x.is_floating_point():
        raise TypeError(f"{name} must be a floating tensor, got {x.dtype}")


def check_same(name: str, x: torch.Tensor, ref_name: str, ref: torch.Tensor) -> None:
    """Require ``x`` to have the shape, dtype and device of ``ref``."""
    if x.shape != ref.shape:
        raise ValueError(
            f"{name} must have the shape of {ref_name} {tuple(ref.shape)}, got {tuple(x.shape)}"
        )
    if x.dtype != ref.dtype:
        raise TypeError(f"{name} must have the dtype of {ref_name} ({ref.dtype}), got {x.dtype}")
    if x.device != ref.device:
        raise ValueError(
            f"{name} must be on the device of {ref_name} ({ref.device}), got {x.device}"
        )


def as_position_mask(name: str, mask: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
    """A per-position mask as a (B, H, W) bool tensor.

    Args:
        name: argument name for error messages.
        mask: (B, 1, H, W) or (B, H, W); bool, or floating/integer where a value
            greater than 0.5 means set.
        like: the (B, C, H, W) feature tensor the mask belongs to.

    Returns:
        A (B, H, W) bool tensor on ``like``'s device.
    """
    if not isinstance(mask, torch.Tensor):
        raise TypeError(f"{name} must be a torch.Tensor, got {type(mask).__name__}")
    b, _, h, w = like.shape
    if mask.dim() == 4 and mask.shape[1] == 1:
        mask = mask[:, 0]
    if mask.dim() != 3 or tuple(mask.shape) != (b, h, w):
        raise ValueError(
            f"{name} must have shape (B, 1, H, W) or (B, H, W) = ({b}, 1, {h}, {w}) or ({b}, {h}, {w}), "
            f"got {tuple(mask.shape)}"
        )
    if mask.device != like.device:
        raise ValueError(
            f"{name} must be on the device of the features ({like.device}), got {mask.device}"
        )
    if mask.dtype == torch.bool:
        return mask
    if mask.is_complex():
        raise TypeError(f"{name} must be bool or real, got {mask.dtype}")
    return mask > 0.5


def check_ksize(ksize: int) -> int:
    """Require a positive odd patch size."""
    if isinstance(ksize, bool) or not isinstance(ksize, int):
        raise TypeError(f"ksize must be an int, got {type(ksize).__name__}")
    if ksize < 1 or ksize % 2 == 0:
        raise ValueError(f"ksize must be a positive odd integer, got {ksize}")
    return ksize


def check_patch_inputs(
    query: torch.Tensor, keys: torch.Tensor, key_valid: torch.Tensor, ksize: int
) -> torch.Tensor:
    """Validate the inputs of the patch ops; returns ``key_valid`` as (B, H, W) bool."""
    check_features("query", query)
    check_features("keys", keys)
    check_same("keys", keys, "query", query)
    check_ksize(ksize)
    return as_position_mask("key_valid", key_valid, query)
