// CPU building blocks of the patch ops (patch_similarity, patch_best_match).
//
// A feature map x (C, H, W) is unrolled into columns col (D = C*k*k, N = H*W):
// col[(c*k + dy+r)*k + dx+r, y*W + x] = x[c, y+dy, x+dx], zero outside the image
// (the layout of torch.nn.functional.unfold). Each column is one patch; it is
// divided by max(||column||, 1e-4). Scores are then a GEMM of two column sets.
#pragma once

#include <ATen/Parallel.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <vector>

#include "common.h"

namespace restore {
namespace cpu {

// Elements per parallel chunk: large enough that a thread's work outweighs the
// fork/join cost of at::parallel_for.
constexpr int64_t kGrainElements = 1 << 15;

inline int64_t grain_for(int64_t elements_per_item) {
  return std::max<int64_t>(1, kGrainElements / std::max<int64_t>(1, elements_per_item));
}

template <typename T>
void im2col(const T* x, int64_t C, int64_t H, int64_t W, int64_t k, T* col) {
  const int64_t r = k / 2, N = H * W, D = C * k * k;
  at::parallel_for(0, D, grain_for(N), [&](int64_t d0, int64_t d1) {
    for (int64_t d = d0; d < d1; ++d) {
      const int64_t c = d / (k * k), dy = (d / k) % k - r, dx = d % k - r;
      const T* xc = x + c * N;
      T* row = col + d * N;
      for (int64_t y = 0; y < H; ++y) {
        const int64_t yy = y + dy;
        T* out = row + y * W;
        if (yy < 0 || yy >= H) {
          std::fill(out, out + W, T(0));
          continue;
        }
        const T* in = xc + yy * W;
        for (int64_t xw = 0; xw < W; ++xw) {
          const int64_t xx = xw + dx;
          out[xw] = (xx >= 0 && xx < W) ? in[xx] : T(0);
        }
      }
    }
  });
}

// dx[c, y, x] = sum over the patches that contain (y, x) of their entry for it
// (the adjoint of im2col; a gather, so planes are independent).
template <typename T>
void col2im(const T* col, int64_t C, int64_t H, int64_t W, int64_t k, T* dx) {
  const int64_t r = k / 2, N = H * W;
  at::parallel_for(0, C, grain_for(N * k * k), [&](int64_t c0, int64_t c1) {
    for (int64_t c = c0; c < c1; ++c) {
      T* out = dx + c * N;
      std::fill(out, out + N, T(0));
      for (int64_t dy = -r; dy <= r; ++dy) {
        for (int64_t dxo = -r; dxo <= r; ++dxo) {
          const T* row = col + ((c * k + dy + r) * k + dxo + r) * N;
          // pixel (y, x) is entry (dy, dx) of the patch centred at (y - dy, x - dx)
          const int64_t y0 = std::max<int64_t>(0, dy), y1 = std::min<int64_t>(H, H + dy);
          const int64_t x0 = std::max<int64_t>(0, dxo), x1 = std::min<int64_t>(W, W + dxo);
          for (int64_t y = y0; y < y1; ++y) {
            const T* in = row + (y - dy) * W - dxo;
            T* o = out + y * W;
            for (int64_t xw = x0; xw < x1; ++xw) o[xw] += in[xw];
          }
        }
      }
    }
  });
}

// Divides every column by max(||column||, floor); norms[p] = ||column p||.
template <typename T>
void normalise_columns(T* col, int64_t D, int64_t N, std::vector<T>& norms) {
  norms.assign(N, T(0));
  at::parallel_for(0, N, grain_for(D), [&](int64_t p0, int64_t p1) {
    T* n = norms.data();
    for (int64_t d = 0; d < D; ++d) {
      const T* row = col + d * N;
      for (int64_t p = p0; p < p1; ++p) n[p] += row[p] * row[p];
    }
    std::vector<T> inv(p1 - p0);
    for (int64_t p = p0; p < p1; ++p) {
      n[p] = std::sqrt(n[p]);
      inv[p - p0] = T(1) / std::max(n[p], T(kNormFloor));
    }
    for (int64_t d = 0; d < D; ++d) {
      T* row = col + d * N;
      for (int64_t p = p0; p < p1; ++p) row[p] *= inv[p - p0];
    }
  });
}

// In place: the gradient wrt a column v, given its normalised value u = v / max(n, floor),
// n = ||v|| and the gradient du wrt u:  dv = (du - u (u.du)) / n when n >= floor, du / floor otherwise.
template <typename T>
void normalise_columns_backward(const T* unit, const std::vector<T>& norms, int64_t D, int64_t N, T* grad) {
  at::parallel_for(0, N, grain_for(D), [&](int64_t p0, int64_t p1) {
    std::vector<T> dot(p1 - p0, T(0));
    for (int64_t d = 0; d < D; ++d) {
      const T* u = unit + d * N;
      const T* g = grad + d * N;
      for (int64_t p = p0; p < p1; ++p) dot[p - p0] += u[p] * g[p];
    }
    std::vector<T> inv(p1 - p0), proj(p1 - p0);
    for (int64_t p = p0; p < p1; ++p) {
      const bool above = norms[p] >= T(kNormFloor);
      inv[p - p0] = T(1) / (above ? norms[p] : T(kNormFloor));
      proj[p - p0] = above ? dot[p - p0] : T(0);
    }
    for (int64_t d = 0; d < D; ++d) {
      const T* u = unit + d * N;
      T* g = grad + d * N;
      for (int64_t p = p0; p < p1; ++p) g[p] = (g[p] - u[p] * proj[p - p0]) * inv[p - p0];
    }
  });
}

// usable[p]: every in-image position of the k×k window centred at p is valid.
inline void usable_keys(const bool* valid, int64_t H, int64_t W, int64_t k, std::vector<uint8_t>& usable) {
  const int64_t r = k / 2;
  usable.assign(H * W, 0);
  for (int64_t y = 0; y < H; ++y) {
    for (int64_t x = 0; x < W; ++x) {
      bool ok = true;
      for (int64_t yy = std::max<int64_t>(0, y - r); ok && yy <= std::min<int64_t>(H - 1, y + r); ++yy)
        for (int64_t xx = std::max<int64_t>(0, x - r); xx <= std::min<int64_t>(W - 1, x + r); ++xx)
          if (!valid[yy * W + xx]) {
            ok = false;
            break;
          }
      usable[y * W + x] = ok;
    }
  }
}

}  // namespace cpu
}  // namespace restore
