"""Naive, obviously-correct implementations (Python loops over positions, float64 NumPy).

They pin the semantics of the references in ``restore.ops`` on tiny inputs.
"""

from __future__ import annotations

import math

import numpy as np
import torch

FLOOR = 1e-4


def _np(t: torch.Tensor) -> np.ndarray:
    return t.detach().cpu().to(torch.float64).numpy()


def _patch(x: np.ndarray, y: int, xx: int, k: int) -> np.ndarray:
    """The k×k patch of x (C, H, W) centred on (y, xx), zeros outside the image."""
    c, h, w = x.shape
    r = k // 2
    out = np.zeros((c, k, k))
    for dy in range(-r, r + 1):
        for dx in range(-r, r + 1):
            yy, xw = y + dy, xx + dx
            if 0 <= yy < h and 0 <= xw < w:
                out[:, dy + r, dx + r] = x[:, yy, xw]
    return out.reshape(-1)


def _usable(valid: np.ndarray, y: int, x: int, k: int) -> bool:
    h, w = valid.shape
    r = k // 2
    for dy in range(-r, r + 1):
        for dx in range(-r, r + 1):
            yy, xx = y + dy, x + dx
            if 0 <= yy < h and 0 <= xx < w and not valid[yy, xx]:
                return False
    return True


def _unit(v: np.ndarray) -> np.ndarray:
    return v / max(float(np.linalg.norm(v)), FLOOR)


def naive_patch_similarity(query, keys, key_valid, ksize):
    """Scores (B, H*W, H, W) by explicit loops over key and query positions."""
    q, k = _np(query), _np(keys)
    valid = key_valid.reshape(q.shape[0], q.shape[2], q.shape[3]).cpu().numpy().astype(bool)
    b_, _, h, w = q.shape
    out = np.empty((b_, h * w, h, w))
    for b in range(b_):
        for ky in range(h):
            for kx in range(w):
                usable = _usable(valid[b], ky, kx, ksize)
                kv = _unit(_patch(k[b], ky, kx, ksize))
                for y in range(h):
                    for x in range(w):
                        if usable:
                            out[b, ky * w + kx, y, x] = float(kv @ _unit(_patch(q[b], y, x, ksize)))
                        else:
                            out[b, ky * w + kx, y, x] = -math.inf
    return out


def naive_best_match(query, keys, key_valid, ksize):
    """(index, score) by a loop keeping the first strict maximum over usable keys."""
    scores = naive_patch_similarity(query, keys, key_valid, ksize)
    b_, n, h, w = scores.shape
    index = np.full((b_, h, w), -1, dtype=np.int64)
    score = np.full((b_, h, w), -math.inf)
    for b in range(b_):
        for y in range(h):
            for x in range(w):
                for p in range(n):
                    s = scores[b, p, y, x]
                    if s != -math.inf and (index[b, y, x] < 0 or s > score[b, y, x]):
                        index[b, y, x], score[b, y, x] = p, s
    return index, score


def naive_csa_propagate(features, hole, index, score):
    """The recurrence of the CSA paper (eq. 3), written literally with Python floats."""
    f = _np(features)
    b_, c, h, w = f.shape
    hole = hole.reshape(b_, h, w).cpu().numpy().astype(bool)
    idx = index.cpu().numpy()
    sc = _np(score)
    out = f.copy()
    for b in range(b_):
        flat = f[b].reshape(c, h * w)
        res = out[b].reshape(c, h * w)
        m_prev = None
        for y in range(h):
            for x in range(w):
                if not hole[b, y, x]:
                    continue
                p = y * w + x
                j = int(idx[b, y, x])
                m_bar = [0.0] * c if j < 0 else [float(flat[ch, j]) for ch in range(c)]
                d_max = max(float(sc[b, y, x]), 0.0) if j >= 0 else 0.0
                if m_prev is None:
                    m = m_bar
                else:
                    fi = [float(flat[ch, p]) for ch in range(c)]
                    dot = sum(a * m for a, m in zip(fi, m_prev, strict=True))
                    na = math.sqrt(sum(a * a for a in fi))
                    nm = math.sqrt(sum(m * m for m in m_prev))
                    d_ad = max(dot / (max(na, FLOOR) * max(nm, FLOOR)), 0.0)
                    total = d_ad + d_max
                    wgt = d_ad / total if total > 0 else 0.0
                    m = [wgt * a + (1 - wgt) * bb for a, bb in zip(m_prev, m_bar, strict=True)]
                for ch in range(c):
                    res[ch, p] = m[ch]
                m_prev = m
    return out


def naive_masked_gradient_penalty(grad, mask, eps):
    """mean_b (sqrt(sum g^2 m + eps) - 1)^2 with explicit loops."""
    g = _np(grad)
    m = _np(mask).reshape(g.shape[0], 1, g.shape[2], g.shape[3])
    total = 0.0
    for b in range(g.shape[0]):
        s = 0.0
        for c in range(g.shape[1]):
            for y in range(g.shape[2]):
                for x in range(g.shape[3]):
                    s += g[b, c, y, x] ** 2 * m[b, 0, y, x]
        total += (math.sqrt(s + eps) - 1) ** 2
    return total / g.shape[0]


def naive_csa_matrix(features, hole, index, score):
    """The per-image attention matrices A (HW × HW) with output[:, p] = Σ_q A[p, q] · f[:, q].

    Known rows are e(p); hole rows follow a_i = w_i · a_{i-1} + (1 − w_i) · e(best_i)
    (DESIGN §7), with the weights w_i of the literal recurrence.
    """
    f = _np(features)
    b_, c, h, w = f.shape
    hole = hole.reshape(b_, h, w).cpu().numpy().astype(bool)
    idx = index.cpu().numpy()
    sc = _np(score)
    mats = np.zeros((b_, h * w, h * w))
    for b in range(b_):
        flat = f[b].reshape(c, h * w)
        a_prev = None
        for p in range(h * w):
            y, x = divmod(p, w)
            if not hole[b, y, x]:
                mats[b, p, p] = 1.0
                continue
            j = int(idx[b, y, x])
            e = np.zeros(h * w)
            if j >= 0:
                e[j] = 1.0
            d_max = max(float(sc[b, y, x]), 0.0) if j >= 0 else 0.0
            if a_prev is None:
                a = e
            else:
                m_prev = flat @ a_prev
                fi = flat[:, p]
                cos = float(fi @ m_prev) / (
                    max(float(np.linalg.norm(fi)), FLOOR)
                    * max(float(np.linalg.norm(m_prev)), FLOOR)
                )
                d_ad = max(cos, 0.0)
                total = d_ad + d_max
                wgt = d_ad / total if total > 0 else 0.0
                a = wgt * a_prev + (1 - wgt) * e
            mats[b, p] = a
            a_prev = a
    return mats
