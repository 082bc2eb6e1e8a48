// restore::csa_propagate — the sequential propagation of the CSA layer (DESIGN §7).
//
// Per image, over the hole positions p_1 < ... < p_n (raster order):
//   m_1 = mbar_1;  for i > 1:  Dad = max(cos(f_i, m_{i-1}), 0),  Dmax = max(score[p_i], 0),
//   w_i = Dad / (Dad + Dmax) (0 when the sum is 0),  m_i = w_i m_{i-1} + (1 - w_i) mbar_i,
// with f_i = features[:, p_i], mbar_i = features[:, index[p_i]] (0 and Dmax = 0 when
// index is -1) and cos(a, b) = a.b / (max(|a|, 1e-4) max(|b|, 1e-4)). Known positions
// are copied. CPU: images in parallel; per image the hole columns are gathered
// into contiguous rows, scanned sequentially and scattered back.
//
// restore::_csa_propagate_backward treats w_i and the indices as constants: the
// weights are recomputed from the saved output (m_{i-1} = output[:, p_{i-1}]) and
// the gradient is pushed through the linear recurrence by a reverse scan.
#include <ATen/Dispatch.h>
#include <ATen/Parallel.h>
#include <ATen/core/Tensor.h>
#include <ATen/ops/empty.h>
#include <ATen/ops/empty_like.h>
#include <torch/library.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <vector>

#include "common.h"

namespace restore {
namespace {

// Hole positions of one image in raster order, with their match (-1: none) and Dmax.
template <typename T>
void collect_holes(const bool* hole, const int64_t* index, const T* score, int64_t N, std::vector<int64_t>& pos,
                   std::vector<int64_t>& match, std::vector<T>& dmax) {
  pos.clear();
  match.clear();
  dmax.clear();
  for (int64_t p = 0; p < N; ++p) {
    if (!hole[p]) continue;
    const int64_t j = index[p];
    TORCH_CHECK_VALUE(j >= -1 && j < N, "index must lie in [-1, H*W) = [-1, ", N,
                      ") at hole positions, got ", j, " at position ", p);
    pos.push_back(p);
    match.push_back(j);
    dmax.push_back(j >= 0 ? std::max(score[p], T(0)) : T(0));
  }
}

// rows[i * C + c] = plane[c * N + positions[i]] (0 for a negative position).
template <typename T>
void gather_rows(const T* plane, int64_t C, int64_t N, const std::vector<int64_t>& positions, T* rows) {
  const int64_t n = static_cast<int64_t>(positions.size());
  for (int64_t c = 0; c < C; ++c) {
    const T* src = plane + c * N;
    for (int64_t i = 0; i < n; ++i) rows[i * C + c] = positions[i] >= 0 ? src[positions[i]] : T(0);
  }
}

// The weight of step i: Dad / (Dad + Dmax) with Dad = max(cos(f, m_prev), 0).
template <typename T>
T step_weight(const T* f, const T* m_prev, int64_t C, T dmax) {
  using acc = std::conditional_t<std::is_same_v<T, float>, double, T>;
  acc dot = 0, ff = 0, mm = 0;
  for (int64_t c = 0; c < C; ++c) {
    dot += acc(f[c]) * acc(m_prev[c]);
    ff += acc(f[c]) * acc(f[c]);
    mm += acc(m_prev[c]) * acc(m_prev[c]);
  }
  const acc floor = kNormFloor;
  const acc cosine = dot / (std::max(std::sqrt(ff), floor) * std::max(std::sqrt(mm), floor));
  const acc dad = std::max(cosine, acc(0));
  const acc total = dad + acc(dmax);
  return total > 0 ? T(dad / total) : T(0);
}

at::Tensor csa_propagate_cpu(const at::Tensor& features, const at::Tensor& hole, const at::Tensor& index,
                             const at::Tensor& score) {
  check_csa_inputs(features, hole, index, score);
  check_cpu_float(features, "features");
  const auto f = features.contiguous(), s = score.contiguous();
  const auto hl = hole.contiguous(), ix = index.contiguous();
  const int64_t B = f.size(0), C = f.size(1), N = f.size(2) * f.size(3);
  auto out = at::empty_like(f);
  if (out.numel() == 0) return out;
  AT_DISPATCH_FLOATING_TYPES(f.scalar_type(), "csa_propagate_cpu", [&] {
    at::parallel_for(0, B, 1, [&](int64_t b0, int64_t b1) {
      std::vector<int64_t> pos, match;
      std::vector<scalar_t> dmax, fh, m;
      for (int64_t b = b0; b < b1; ++b) {
        const scalar_t* fb = f.data_ptr<scalar_t>() + b * C * N;
        scalar_t* ob = out.data_ptr<scalar_t>() + b * C * N;
        std::memcpy(ob, fb, sizeof(scalar_t) * C * N);
        collect_holes(hl.data_ptr<bool>() + b * N, ix.data_ptr<int64_t>() + b * N, s.data_ptr<scalar_t>() + b * N,
                      N, pos, match, dmax);
        const int64_t n = static_cast<int64_t>(pos.size());
        if (n == 0) continue;
        fh.resize(n * C);
        m.resize(n * C);
        gather_rows(fb, C, N, pos, fh.data());
        gather_rows(fb, C, N, match, m.data());  // mbar_i, overwritten by m_i
        for (int64_t i = 1; i < n; ++i) {
          const scalar_t* prev = m.data() + (i - 1) * C;
          scalar_t* cur = m.data() + i * C;
          const scalar_t w = step_weight(fh.data() + i * C, prev, C, dmax[i]);
          const scalar_t v = scalar_t(1) - w;
          for (int64_t c = 0; c < C; ++c) cur[c] = w * prev[c] + v * cur[c];
        }
        for (int64_t c = 0; c < C; ++c) {
          scalar_t* dst = ob + c * N;
          for (int64_t i = 0; i < n; ++i) dst[pos[i]] = m[i * C + c];
        }
      }
    });
  });
  return out;
}

at::Tensor csa_propagate_backward_cpu(const at::Tensor& grad, const at::Tensor& features, const at::Tensor& hole,
                                      const at::Tensor& index, const at::Tensor& score, const at::Tensor& output) {
  check_csa_inputs(features, hole, index, score);
  check_like(grad, "grad", features, "features");
  check_like(output, "output", features, "features");
  check_cpu_float(features, "features");
  const auto f = features.contiguous(), s = score.contiguous(), g = grad.contiguous(), o = output.contiguous();
  const auto hl = hole.contiguous(), ix = index.contiguous();
  const int64_t B = f.size(0), C = f.size(1), N = f.size(2) * f.size(3);
  auto grad_features = at::empty_like(f);
  if (f.numel() == 0) return grad_features;
  AT_DISPATCH_FLOATING_TYPES(f.scalar_type(), "csa_propagate_backward_cpu", [&] {
    at::parallel_for(0, B, 1, [&](int64_t b0, int64_t b1) {
      std::vector<int64_t> pos, match;
      std::vector<scalar_t> dmax, weight, fh, mo, gh;
      for (int64_t b = b0; b < b1; ++b) {
        const bool* hb = hl.data_ptr<bool>() + b * N;
        const scalar_t* gb = g.data_ptr<scalar_t>() + b * C * N;
        scalar_t* df = grad_features.data_ptr<scalar_t>() + b * C * N;
        // Known positions pass the gradient through; hole positions' own features get none.
        for (int64_t c = 0; c < C; ++c)
          for (int64_t p = 0; p < N; ++p) df[c * N + p] = hb[p] ? scalar_t(0) : gb[c * N + p];
        collect_holes(hb, ix.data_ptr<int64_t>() + b * N, s.data_ptr<scalar_t>() + b * N, N, pos, match, dmax);
        const int64_t n = static_cast<int64_t>(pos.size());
        if (n == 0) continue;
        fh.resize(n * C);
        mo.resize(n * C);
        gh.resize(n * C);
        gather_rows(f.data_ptr<scalar_t>() + b * C * N, C, N, pos, fh.data());
        gather_rows(o.data_ptr<scalar_t>() + b * C * N, C, N, pos, mo.data());
        gather_rows(gb, C, N, pos, gh.data());
        weight.assign(n, scalar_t(0));
        for (int64_t i = 1; i < n; ++i) weight[i] = step_weight(fh.data() + i * C, mo.data() + (i - 1) * C, C, dmax[i]);
        // Reverse scan: g_i = grad_i + w_{i+1} g_{i+1} (the carry); d mbar_i = (1 - w_i) g_i, kept in gh.
        std::vector<scalar_t> carry(C, scalar_t(0));
        for (int64_t i = n - 1; i >= 0; --i) {
          scalar_t* gi = gh.data() + i * C;
          const scalar_t w = weight[i];
          const scalar_t v = scalar_t(1) - w;
          for (int64_t c = 0; c < C; ++c) {
            const scalar_t total = gi[c] + carry[c];
            carry[c] = w * total;
            gi[c] = v * total;
          }
        }
        for (int64_t c = 0; c < C; ++c) {
          scalar_t* dst = df + c * N;
          for (int64_t i = 0; i < n; ++i)
            if (match[i] >= 0) dst[match[i]] += gh[i * C + c];
        }
      }
    });
  });
  return grad_features;
}

}  // namespace

TORCH_LIBRARY_FRAGMENT(restore, m) {
  m.def("csa_propagate(Tensor features, Tensor hole, Tensor index, Tensor score) -> Tensor");
  m.def(
      "_csa_propagate_backward(Tensor grad, Tensor features, Tensor hole, Tensor index, Tensor score, "
      "Tensor output) -> Tensor");
}

TORCH_LIBRARY_IMPL(restore, CPU, m) {
  m.impl("csa_propagate", &csa_propagate_cpu);
  m.impl("_csa_propagate_backward", &csa_propagate_backward_cpu);
}

}  // namespace restore
