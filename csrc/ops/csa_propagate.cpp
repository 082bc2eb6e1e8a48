// restore::csa_propagate — the sequential propagation of the CSA layer (DESIGN §7).
//
// Per image, over the hole positions p_1 < ... < p_n (raster order):
//   m_1 = mbar_1;  for i > 1:  Dad = max(cos(f_i, m_{i-1}), 0),  Dmax = max(score[p_i], 0),
//   w_i = Dad / (Dad + Dmax) (0 when the sum is 0),  m_i = w_i m_{i-1} + (1 - w_i) mbar_i,
// with f_i = features[:, p_i], mbar_i = features[:, index[p_i]] (0 and Dmax = 0 when
// index is -1) and cos(a, b) = a.b / (max(|a|, 1e-4) max(|b|, 1e-4)). Known positions
// are copied. CPU: images in parallel; per image the hole and matched columns are
// gathered into contiguous rows, scanned sequentially and written back.
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
#include <memory>
#include <vector>

#include "common.h"

#if defined(__GNUC__) && !defined(__clang__) && defined(__x86_64__) && defined(__linux__)
#define RESTORE_MULTIVERSION __attribute__((target_clones("arch=x86-64-v3", "default")))
#else
#define RESTORE_MULTIVERSION
#endif
#if defined(__GNUC__)
#define RESTORE_ALWAYS_INLINE inline __attribute__((always_inline))
#else
#define RESTORE_ALWAYS_INLINE inline
#endif

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

// Layout. The scan wants each position's C channels contiguous ("rows", (n, C)) but
// the features are planes (C, N). The gathers and the scatter walk blocks of kTile
// planes (64 KiB at 32x32, cache resident) and move kTile x kTile values at a time
// through a scratch tile: planes are read or written along their positions, rows
// along their channels, and nothing strides by a power of two (which aliases in the
// cache). Each plane is read once; the known positions are copied in the same pass.
constexpr int64_t kTile = 16;

// Copies count <= kTile values; the full-tile case has a constant size, so it is inlined.
template <typename T>
inline void copy_short(const T* src, int64_t count, T* dst) {
  if (count == kTile)
    std::memcpy(dst, src, sizeof(T) * kTile);
  else
    for (int64_t c = 0; c < count; ++c) dst[c] = src[c];
}

// rows[i * C + c] = plane[c * N + pos[i]] for c < nc (<= kTile) and every i < n; pos >= 0.
// The plane side is a gather along positions, the row side contiguous stores.
template <typename T>
RESTORE_ALWAYS_INLINE void gather_block(const T* plane, int64_t N, int64_t nc, const int64_t* pos, int64_t n,
                                        int64_t C, T* rows) {
  T tile[kTile][kTile];
  for (int64_t i0 = 0; i0 < n; i0 += kTile) {
    const int64_t ni = std::min(kTile, n - i0);
    const int64_t* p = pos + i0;
    for (int64_t c = 0; c < nc; ++c) {
      const T* src = plane + c * N;
      for (int64_t i = 0; i < ni; ++i) tile[c][i] = src[p[i]];
    }
    for (int64_t i = 0; i < ni; ++i) {
      T* row = rows + (i0 + i) * C;
      for (int64_t c = 0; c < nc; ++c) row[c] = tile[c][i];
    }
  }
}

RESTORE_MULTIVERSION void gather_block_rows(const float* plane, int64_t N, int64_t nc, const int64_t* pos, int64_t n,
                                            int64_t C, float* rows) {
  gather_block(plane, N, nc, pos, n, C, rows);
}
RESTORE_MULTIVERSION void gather_block_rows(const double* plane, int64_t N, int64_t nc, const int64_t* pos,
                                            int64_t n, int64_t C, double* rows) {
  gather_block(plane, N, nc, pos, n, C, rows);
}

// For each of the `lists` position lists: rows[l][i * C + c] = plane[c * N + pos[l][i]]
// (0 for a negative position). With copy_to, the planes are also copied there.
// Blocks of planes are independent: with split, they are shared among the threads.
template <typename T, int lists>
void gather_rows(const T* plane, int64_t C, int64_t N, int64_t n, const int64_t* const (&pos)[lists],
                 T* const (&rows)[lists], T* copy_to, bool split) {
  const int64_t blocks = (C + kTile - 1) / kTile;
  std::vector<int64_t> clamped[lists];
  const int64_t* safe[lists];
  for (int l = 0; l < lists; ++l) {
    safe[l] = pos[l];
    if (std::any_of(pos[l], pos[l] + n, [](int64_t p) { return p < 0; })) {
      clamped[l].assign(pos[l], pos[l] + n);
      for (auto& p : clamped[l]) p = std::max<int64_t>(p, 0);
      safe[l] = clamped[l].data();
    }
  }
  auto work = [&](int64_t k0, int64_t k1) {
    for (int64_t c0 = k0 * kTile; c0 < std::min(C, k1 * kTile); c0 += kTile) {
      const int64_t nc = std::min(kTile, C - c0);
      if (copy_to != nullptr) std::memcpy(copy_to + c0 * N, plane + c0 * N, sizeof(T) * nc * N);
      for (int l = 0; l < lists; ++l) gather_block_rows(plane + c0 * N, N, nc, safe[l], n, C, rows[l] + c0);
    }
  };
  if (split)
    at::parallel_for(0, blocks, 1, work);
  else
    work(0, blocks);
  for (int l = 0; l < lists; ++l)  // negative positions (no match) read as zero rows
    for (int64_t i = 0; i < n; ++i)
      if (pos[l][i] < 0) std::fill(rows[l] + i * C, rows[l] + (i + 1) * C, T(0));
}

// plane[c * N + pos[i]] = rows[i * C + c] (add = false) or += (add = true); negative
// positions are skipped. Sequential per plane, so repeated positions accumulate; with
// split, blocks of planes are shared among the threads.
template <typename T, bool add>
void scatter_rows(const T* rows, int64_t C, int64_t N, int64_t n, const int64_t* pos, T* plane, bool split) {
  const int64_t blocks = (C + kTile - 1) / kTile;
  auto work = [&](int64_t k0, int64_t k1) {
    T tile[kTile][kTile];
    for (int64_t c0 = k0 * kTile; c0 < std::min(C, k1 * kTile); c0 += kTile) {
      const int64_t nc = std::min(kTile, C - c0);
      for (int64_t i0 = 0; i0 < n; i0 += kTile) {
        const int64_t ni = std::min(kTile, n - i0);
        const int64_t* p = pos + i0;
        for (int64_t i = 0; i < ni; ++i) copy_short(rows + (i0 + i) * C + c0, nc, tile[i]);
        for (int64_t c = 0; c < nc; ++c) {
          T* dst = plane + (c0 + c) * N;
          for (int64_t i = 0; i < ni; ++i) {
            if (p[i] < 0) continue;
            if constexpr (add)
              dst[p[i]] += tile[i][c];
            else
              dst[p[i]] = tile[i][c];
          }
        }
      }
    }
  };
  if (split)
    at::parallel_for(0, blocks, 1, work);
  else
    work(0, blocks);
}

// Runs body(b, split) for every image: images in parallel when there are at least as
// many as threads, else one after the other with each image's plane passes split
// among the threads (the scan itself is sequential either way).
template <typename F>
void for_each_image(int64_t B, const F& body) {
  if (B >= at::get_num_threads()) {
    at::parallel_for(0, B, 1, [&](int64_t b0, int64_t b1) {
      for (int64_t b = b0; b < b1; ++b) body(b, false);
    });
  } else {
    for (int64_t b = 0; b < B; ++b) body(b, true);
  }
}

// dot = f.m, ff = f.f, mm = m.m over C values, summed in 32-byte vector lanes (GCC/Clang
// vector extensions: SSE or AVX per compiled clone) in a fixed order: deterministic.
template <typename T>
RESTORE_ALWAYS_INLINE void dot3(const T* f, const T* m, int64_t C, T& dot, T& ff, T& mm) {
  int64_t c = 0;
  dot = ff = mm = T(0);
#if defined(__GNUC__)
  typedef T vec __attribute__((vector_size(32)));
  constexpr int64_t kLanes = 32 / sizeof(T);
  vec vd = {}, vf = {}, vm = {};
  for (; c + kLanes <= C; c += kLanes) {
    vec x, y;
    std::memcpy(&x, f + c, sizeof(vec));
    std::memcpy(&y, m + c, sizeof(vec));
    vd += x * y;
    vf += x * x;
    vm += y * y;
  }
  for (int64_t l = 0; l < kLanes; ++l) {
    dot += vd[l];
    ff += vf[l];
    mm += vm[l];
  }
#endif
  for (; c < C; ++c) {
    dot += f[c] * m[c];
    ff += f[c] * f[c];
    mm += m[c] * m[c];
  }
}

// The weight of step i: Dad / (Dad + Dmax) with Dad = max(cos(f, m_prev), 0).
template <typename T>
RESTORE_ALWAYS_INLINE T step_weight(const T* f, const T* m_prev, int64_t C, T dmax) {
  T dot, ff, mm;
  dot3(f, m_prev, C, dot, ff, mm);
  const T floor = T(kNormFloor);
  const T cosine = dot / (std::max(std::sqrt(ff), floor) * std::max(std::sqrt(mm), floor));
  const T dad = std::max(cosine, T(0));
  const T total = dad + dmax;
  return total > T(0) ? dad / total : T(0);
}

// Forward scan in place: m holds mbar_i rows on entry and m_i rows on exit.
template <typename T>
RESTORE_ALWAYS_INLINE void forward_scan(const T* fh, T* m, const T* dmax, int64_t n, int64_t C) {
  for (int64_t i = 1; i < n; ++i) {
    const T* prev = m + (i - 1) * C;
    T* cur = m + i * C;
    const T w = step_weight(fh + i * C, prev, C, dmax[i]);
    const T v = T(1) - w;
    for (int64_t c = 0; c < C; ++c) cur[c] = w * prev[c] + v * cur[c];
  }
}

// Backward: weights from the output rows mo (m_{i-1}), then the reverse scan turning the
// output-gradient rows gh into the gradients of mbar_i. carry: C scratch values.
template <typename T>
RESTORE_ALWAYS_INLINE void backward_scan(const T* fh, const T* mo, const T* dmax, T* weight, T* gh, T* carry,
                                         int64_t n, int64_t C) {
  weight[0] = T(0);
  for (int64_t i = 1; i < n; ++i) weight[i] = step_weight(fh + i * C, mo + (i - 1) * C, C, dmax[i]);
  // g_i = grad_i + w_{i+1} g_{i+1} (the carry); d mbar_i = (1 - w_i) g_i, kept in gh.
  std::fill(carry, carry + C, T(0));
  for (int64_t i = n - 1; i >= 0; --i) {
    T* gi = gh + i * C;
    const T w = weight[i];
    const T v = T(1) - w;
    for (int64_t c = 0; c < C; ++c) {
      const T total = gi[c] + carry[c];
      carry[c] = w * total;
      gi[c] = v * total;
    }
  }
}

// The scans are compiled twice on x86-64 GCC (AVX2/FMA and baseline), picked at load
// time: the sequential scan is the op's critical path.
RESTORE_MULTIVERSION void forward_scan_rows(const float* fh, float* m, const float* dmax, int64_t n, int64_t C) {
  forward_scan(fh, m, dmax, n, C);
}
RESTORE_MULTIVERSION void forward_scan_rows(const double* fh, double* m, const double* dmax, int64_t n, int64_t C) {
  forward_scan(fh, m, dmax, n, C);
}
RESTORE_MULTIVERSION void backward_scan_rows(const float* fh, const float* mo, const float* dmax, float* weight,
                                             float* gh, float* carry, int64_t n, int64_t C) {
  backward_scan(fh, mo, dmax, weight, gh, carry, n, C);
}
RESTORE_MULTIVERSION void backward_scan_rows(const double* fh, const double* mo, const double* dmax, double* weight,
                                             double* gh, double* carry, int64_t n, int64_t C) {
  backward_scan(fh, mo, dmax, weight, gh, carry, n, C);
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
    for_each_image(B, [&](int64_t b, bool split) {
      std::vector<int64_t> pos, match;
      std::vector<scalar_t> dmax;
      const scalar_t* fb = f.data_ptr<scalar_t>() + b * C * N;
      scalar_t* ob = out.data_ptr<scalar_t>() + b * C * N;
      collect_holes(hl.data_ptr<bool>() + b * N, ix.data_ptr<int64_t>() + b * N, s.data_ptr<scalar_t>() + b * N, N,
                    pos, match, dmax);
      const int64_t n = static_cast<int64_t>(pos.size());
      if (n == 0) {
        std::memcpy(ob, fb, sizeof(scalar_t) * C * N);
        return;
      }
      // One uninitialised block: the f_i rows, then the mbar_i rows (overwritten by m_i).
      std::unique_ptr<scalar_t[]> buffer(new scalar_t[2 * n * C]);
      scalar_t* fh = buffer.get();
      scalar_t* m = fh + n * C;
      gather_rows<scalar_t, 2>(fb, C, N, n, {pos.data(), match.data()}, {fh, m}, /*copy_to=*/ob, split);
      forward_scan_rows(fh, m, dmax.data(), n, C);
      scatter_rows<scalar_t, false>(m, C, N, n, pos.data(), ob, split);
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
    for_each_image(B, [&](int64_t b, bool split) {
      std::vector<int64_t> pos, match;
      std::vector<scalar_t> dmax, weight, carry(C);
      const bool* hb = hl.data_ptr<bool>() + b * N;
      const scalar_t* gb = g.data_ptr<scalar_t>() + b * C * N;
      scalar_t* df = grad_features.data_ptr<scalar_t>() + b * C * N;
      // Known positions pass the gradient through; hole positions' own features get none.
      for (int64_t c = 0; c < C; ++c)
        for (int64_t p = 0; p < N; ++p) df[c * N + p] = hb[p] ? scalar_t(0) : gb[c * N + p];
      collect_holes(hb, ix.data_ptr<int64_t>() + b * N, s.data_ptr<scalar_t>() + b * N, N, pos, match, dmax);
      const int64_t n = static_cast<int64_t>(pos.size());
      if (n == 0) return;
      std::unique_ptr<scalar_t[]> buffer(new scalar_t[3 * n * C]);
      scalar_t* fh = buffer.get();
      scalar_t* mo = fh + n * C;
      scalar_t* gh = mo + n * C;
      const int64_t* at_pos = pos.data();
      gather_rows<scalar_t, 1>(f.data_ptr<scalar_t>() + b * C * N, C, N, n, {at_pos}, {fh}, nullptr, split);
      gather_rows<scalar_t, 1>(o.data_ptr<scalar_t>() + b * C * N, C, N, n, {at_pos}, {mo}, nullptr, split);
      gather_rows<scalar_t, 1>(gb, C, N, n, {at_pos}, {gh}, nullptr, split);
      weight.resize(n);
      backward_scan_rows(fh, mo, dmax.data(), weight.data(), gh, carry.data(), n, C);
      scatter_rows<scalar_t, true>(gh, C, N, n, match.data(), df, split);
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
