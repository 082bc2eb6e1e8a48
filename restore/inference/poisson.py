"""Poisson blending of a network's fill into the hole (GLCIC's post-processing, Iizuka et al. 2017).

The network's raw output (the *guide*) can be a little off in colour or level at the hole's
edge. :func:`poisson_blend` keeps the guide's gradients everywhere in the hole, across the
seam included, and takes the known pixels as the boundary: for every hole pixel p with its
4-neighbours N(p) inside the image (none outside: no wrap, no padding pixels),

    |N(p)|·f_p − Σ_{q∈N(p)∩hole} f_q = Σ_{q∈N(p)} (guide_p − guide_q) + Σ_{q∈N(p)∖hole} image_q.

We solve it for the correction c = f − guide, a Laplace problem with the boundary values
image − guide on the known neighbours, by conjugate gradients from c = 0 (f = guide),
batched over images and channels, in torch on the tensors' own device, on the bounding box
of all holes plus a 1-pixel margin. OpenCV's ``seamlessClone`` (the public GLCIC code) is not
used: it fails or ghosts where the mask touches the border, and shifts its region.

:class:`PoissonBlended` wraps an inpainter that has a raw network output (``predict``) into
one that blends it (``restore batch --blend poisson``).

Every name here imports torch lazily (this package is import-safe).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from restore.models.registry import BLEND_MODES

if TYPE_CHECKING:
    from torch import Tensor

    from restore.models.base import Inpainter

__all__ = ["BLEND_MODES", "PoissonBlended", "poisson_blend"]


def poisson_blend(
    guide: Tensor,
    image: Tensor,
    mask: Tensor,
    *,
    tol: float = 1e-5,
    max_iter: int | None = None,
    info: dict[str, Any] | None = None,
) -> Tensor:
    """Fill the holes of ``image`` with ``guide``'s gradients, the known pixels as the boundary.

    Solves the equation of the module docstring per image and channel by conjugate gradients
    (float64 when ``guide`` or ``image`` is float64, else float32), on the bounding box of
    all holes of the batch plus a 1-pixel margin. A system has converged when its residual
    norm is at most ``tol`` × its right-hand side's norm. A hole component that touches no
    known pixel (all of an image a hole, say) has no boundary to pin its level: it keeps the
    guide unchanged (its right-hand side is zero and the iteration never reaches it).

    The result is not clamped to [0, 1] and carries no gradient.

    Args:
        guide: the fill whose gradients to keep (a network's raw output).
        image: the image whose known pixels are the boundary (and are returned exactly).
        mask: 1 = hole (values above 0.5).
        tol: relative residual at which each system stops.
        max_iter: the most iterations [default: 4 × (box height + width) + 100].
        info: if given, filled with ``iterations`` (taken), ``converged`` (every system) and
            ``residual`` (the largest relative residual norm).

    Returns:
        ``image`` with its hole pixels solved, in ``image``'s dtype; a copy of ``image`` when
        there is no hole.

    Shape:
        guide, image: (B, C, H, W); mask: (B, 1, H, W); returns (B, C, H, W).
    """
    import torch

    if guide.shape != image.shape or image.ndim != 4:
        raise ValueError(f"guide {tuple(guide.shape)} and image {tuple(image.shape)} must be one (B, C, H, W) shape")
    if mask.ndim != 4 or mask.shape[1] != 1 or mask.shape[0] != image.shape[0] or mask.shape[2:] != image.shape[2:]:
        raise ValueError(f"mask {tuple(mask.shape)} does not match image {tuple(image.shape)}")
    if info is not None:
        info.update(iterations=0, converged=True, residual=0.0)
    hole = mask.detach() > 0.5
    covered = hole.any(dim=1).any(dim=0)  # (H, W): a hole in any image
    rows = torch.nonzero(covered.any(dim=1)).flatten()
    if rows.numel() == 0:
        return image.clone()
    cols = torch.nonzero(covered.any(dim=0)).flatten()
    height, width = covered.shape
    top, bottom = max(int(rows[0]) - 1, 0), min(int(rows[-1]) + 2, height)
    left, right = max(int(cols[0]) - 1, 0), min(int(cols[-1]) + 2, width)
    box = (..., slice(top, bottom), slice(left, right))
    dtype = torch.float64 if torch.float64 in (guide.dtype, image.dtype) else torch.float32

    with torch.no_grad():
        g = guide.detach()[box].to(dtype)
        known = image.detach()[box].to(dtype)
        inside = hole[box].to(dtype)  # (B, 1, h, w); the margin is never a hole
        # In-image neighbours of each pixel: the box's zero padding drops only neighbours outside
        # the image, since a hole pixel on the box's edge is on the image's edge.
        diagonal = _neighbour_sum(torch.ones_like(inside)) * inside
        rhs = _neighbour_sum((known - g) * (1 - inside)) * inside
        limit = max_iter if max_iter is not None else 4 * (bottom - top + right - left) + 100
        # One more ring of zeros (not holes) all round: the operator then reads no pixel beyond the arrays.
        ring = [torch.nn.functional.pad(t, (1, 1, 1, 1)) for t in (diagonal, inside, rhs)]
        correction, iterations, residual = _conjugate_gradient(*ring, tol, limit)
        correction = correction[..., 1:-1, 1:-1]
        solved = torch.where(hole[box], (g + correction).to(image.dtype), image[box])
        out = image.detach().clone()
        out[box] = solved
    if info is not None:
        info.update(iterations=iterations, converged=residual <= tol, residual=residual)
    return out


def _neighbour_sum(x: Tensor) -> Tensor:
    """Σ of each pixel's 4-neighbours, zero beyond the edges.

    Shape:
        x: (..., H, W); returns (..., H, W).
    """
    out = x.new_zeros(x.shape)
    out[..., 1:, :] += x[..., :-1, :]
    out[..., :-1, :] += x[..., 1:, :]
    out[..., :, 1:] += x[..., :, :-1]
    out[..., :, :-1] += x[..., :, 1:]
    return out


def _conjugate_gradient(diagonal: Tensor, inside: Tensor, rhs: Tensor, tol: float, max_iter: int) -> tuple[Tensor, int, float]:
    """Solve ``A c = rhs`` per (image, channel), A c = diagonal·c − inside·Σ_neighbours c on hole pixels.

    A is symmetric and positive definite on the hole pixels of every component touching a
    known pixel; elsewhere it is singular, but there the right-hand side is zero and so is
    every search direction, so those pixels stay 0. The outer ring of the arrays must hold
    no hole (it is never written).

    Returns:
        The solution, the iterations taken and the largest relative residual norm left.

    Shape:
        diagonal, inside: (B, 1, h, w); rhs: (B, C, h, w); returns (B, C, h, w).
    """
    import torch

    def dot(a: Tensor, b: Tensor) -> Tensor:
        return torch.linalg.vecdot(a.flatten(-2), b.flatten(-2))[..., None, None]

    rhs = rhs.contiguous()
    diagonal, minus_inside = diagonal[..., 1:-1, 1:-1], -inside[..., 1:-1, 1:-1]
    tiny = torch.finfo(rhs.dtype).tiny
    x = torch.zeros_like(rhs)
    r = rhs.clone()
    p = r.clone()
    ap = torch.zeros_like(rhs)
    interior = ap[..., 1:-1, 1:-1]
    rr = dot(r, r)
    norms = rr.sqrt().clamp_min(tiny)
    active = rr.sqrt() > tol * norms
    iterations = 0
    while iterations < max_iter and bool(active.any()):
        # ap = A p: the neighbour sum, masked to the holes, from the diagonal term
        torch.add(p[..., :-2, 1:-1], p[..., 2:, 1:-1], out=interior)
        interior.add_(p[..., 1:-1, :-2]).add_(p[..., 1:-1, 2:])
        interior.mul_(minus_inside).addcmul_(diagonal, p[..., 1:-1, 1:-1])
        pap = dot(p, ap)
        alpha = torch.where(active & (pap > 0), rr / pap.clamp_min(tiny), 0.0)
        x.addcmul_(alpha, p)
        r.addcmul_(alpha, ap, value=-1.0)
        rr_next = dot(r, r)
        beta = torch.where(active & (rr > 0), rr_next / rr.clamp_min(tiny), 0.0)
        p.mul_(beta).add_(r)
        rr = rr_next
        active &= rr.sqrt() > tol * norms
        iterations += 1
    residual = float((rr.sqrt() / norms).max()) if rr.numel() else 0.0
    return x, iterations, residual


class PoissonBlended:
    """An :class:`~restore.models.base.Inpainter` that Poisson-blends another's raw network output.

    ``inpaint`` runs ``inner.predict`` (the raw prediction, before compositing) and returns
    :func:`poisson_blend` of it into the image, clamped to [0, 1], known pixels exact. It runs
    on the device of the network (``device`` of the innermost inpainter) and hands the result
    back on the input's device.

    Args:
        inner: an inpainter with ``predict(image, mask)`` — a
            :class:`~restore.models.network.NetworkInpainter`, or a
            :class:`~restore.models.ensemble.SelfEnsemble` of one.
        tol: :func:`poisson_blend`'s tolerance.
        max_iter: :func:`poisson_blend`'s iteration limit.

    Raises:
        ValueError: ``inner`` has no network output (a classical method).
    """

    def __init__(self, inner: Inpainter, *, tol: float = 1e-5, max_iter: int | None = None) -> None:
        base = _innermost(inner)
        if not callable(getattr(base, "predict", None)):
            raise ValueError(f"--blend poisson needs a method with a network output; {inner.name} has none")
        self.inner = inner
        self.name = inner.name
        self.tol = tol
        self.max_iter = max_iter
        self.device = getattr(base, "device", None)

    def inpaint(self, image: Tensor, mask: Tensor) -> Tensor:
        """Fill the holes with the blended network output.

        Shape:
            image: (B, 3, H, W) in [0, 1]; mask: (B, 1, H, W), 1 = hole; returns (B, 3, H, W).
        """
        import torch

        from restore.models.base import check_inputs, composite

        check_inputs(image, mask)
        with torch.no_grad():
            device = self.device if self.device is not None else image.device
            image_d, mask_d = image.to(device), mask.to(device)
            guide = self.inner.predict(image_d, mask_d)
            blended = poisson_blend(guide.to(device), image_d, mask_d, tol=self.tol, max_iter=self.max_iter)
            return composite(blended.to(image.device), image, mask)


def _innermost(inpainter: Any) -> Any:
    """The inpainter under any :class:`~restore.models.ensemble.SelfEnsemble` wrappers."""
    from restore.models.ensemble import SelfEnsemble

    while isinstance(inpainter, SelfEnsemble):
        inpainter = inpainter.inner
    return inpainter
