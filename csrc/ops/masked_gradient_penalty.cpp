// restore::masked_gradient_penalty — mean_b (sqrt(sum_{c,y,x} g^2 m + eps) - 1)^2 in one pass.
//
// grad g: (B, C, H, W); mask m: (B, 1, H, W) of g's dtype, broadcast over channels.
// restore::_masked_gradient_penalty_backward(grad_out, g, m, eps) =
//   grad_out * (2 / B) * (1 - 1 / slope_b) * g * m, slope_b = sqrt(sum g^2 m + eps);
// its own derivative is registered in Python (restore/ops/masked_gradient_penalty.py).
#include <ATen/Dispatch.h>
#include <ATen/Parallel.h>
#include <ATen/core/Tensor.h>
#include <ATen/ops/empty.h>
#include <ATen/ops/empty_like.h>
#include <torch/library.h>

#include <cmath>
#include <vector>

#include "common.h"

namespace restore {
namespace {

// sum_{y,x} g[b, c, y, x]^2 m[b, 0, y, x] for every (b, c), in double; planes in parallel.
// Each plane is summed in float lanes over short chunks (vectorisable) and the chunks in double.
template <typename T>
std::vector<double> plane_sums(const T* g, const T* m, int64_t B, int64_t C, int64_t N) {
  std::vector<double> sums(B * C, 0.0);
  at::parallel_for(0, B * C, std::max<int64_t>(1, (1 << 15) / std::max<int64_t>(1, N)), [&](int64_t i0, int64_t i1) {
    constexpr int64_t kLanes = 16, kChunk = 1024;
    for (int64_t i = i0; i < i1; ++i) {
      const T* gp = g + i * N;
      const T* mp = m + (i / C) * N;
      double total = 0.0;
      for (int64_t start = 0; start < N; start += kChunk) {
        const int64_t stop = std::min(N, start + kChunk);
        T lanes[kLanes] = {};
        int64_t p = start;
        for (; p + kLanes <= stop; p += kLanes)
          for (int64_t l = 0; l < kLanes; ++l) lanes[l] += gp[p + l] * gp[p + l] * mp[p + l];
        double chunk = 0.0;
        for (int64_t l = 0; l < kLanes; ++l) chunk += double(lanes[l]);
        for (; p < stop; ++p) chunk += double(gp[p]) * double(gp[p]) * double(mp[p]);
        total += chunk;
      }
      sums[i] = total;
    }
  });
  return sums;
}

// slope_b = sqrt(sum_c sums[b, c] + eps)
inline std::vector<double> slopes(const std::vector<double>& sums, int64_t B, int64_t C, double eps) {
  std::vector<double> out(B);
  for (int64_t b = 0; b < B; ++b) {
    double s = 0.0;
    for (int64_t c = 0; c < C; ++c) s += sums[b * C + c];
    out[b] = std::sqrt(s + eps);
  }
  return out;
}

at::Tensor masked_gradient_penalty_cpu(const at::Tensor& grad, const at::Tensor& mask, double eps) {
  check_penalty_inputs(grad, mask, eps);
  check_cpu_float(grad, "grad");
  const auto g = grad.contiguous(), m = mask.contiguous();
  const int64_t B = g.size(0), C = g.size(1), N = g.size(2) * g.size(3);
  TORCH_CHECK_VALUE(B > 0, "grad must have a non-empty batch (the penalty is a mean over it)");
  auto out = at::empty({}, g.options());
  AT_DISPATCH_FLOATING_TYPES(g.scalar_type(), "masked_gradient_penalty_cpu", [&] {
    const auto slope = slopes(plane_sums(g.data_ptr<scalar_t>(), m.data_ptr<scalar_t>(), B, C, N), B, C, eps);
    double total = 0.0;
    for (int64_t b = 0; b < B; ++b) total += (slope[b] - 1.0) * (slope[b] - 1.0);
    *out.data_ptr<scalar_t>() = scalar_t(total / double(B));
  });
  return out;
}

at::Tensor masked_gradient_penalty_backward_cpu(const at::Tensor& grad_out, const at::Tensor& grad,
                                                const at::Tensor& mask, double eps) {
  check_penalty_inputs(grad, mask, eps);
  check_cpu_float(grad, "grad");
  TORCH_CHECK_VALUE(grad_out.numel() == 1, "grad_out must hold one value, got shape ", grad_out.sizes());
  TORCH_CHECK_TYPE(grad_out.scalar_type() == grad.scalar_type(), "grad_out must have the dtype of grad (",
                   grad.scalar_type(), "), got ", grad_out.scalar_type());
  const auto g = grad.contiguous(), m = mask.contiguous();
  const int64_t B = g.size(0), C = g.size(1), N = g.size(2) * g.size(3);
  TORCH_CHECK_VALUE(B > 0, "grad must have a non-empty batch (the penalty is a mean over it)");
  auto result = at::empty_like(g);
  AT_DISPATCH_FLOATING_TYPES(g.scalar_type(), "masked_gradient_penalty_backward_cpu", [&] {
    const scalar_t* gp = g.data_ptr<scalar_t>();
    const scalar_t* mp = m.data_ptr<scalar_t>();
    const auto slope = slopes(plane_sums(gp, mp, B, C, N), B, C, eps);
    const double go = double(grad_out.contiguous().data_ptr<scalar_t>()[0]);
    std::vector<scalar_t> factor(B);
    for (int64_t b = 0; b < B; ++b) factor[b] = scalar_t(go * 2.0 / double(B) * (1.0 - 1.0 / slope[b]));
    scalar_t* rp = result.data_ptr<scalar_t>();
    at::parallel_for(0, B * C, std::max<int64_t>(1, (1 << 15) / std::max<int64_t>(1, N)), [&](int64_t i0, int64_t i1) {
      for (int64_t i = i0; i < i1; ++i) {
        const scalar_t f = factor[i / C];
        const scalar_t* gi = gp + i * N;
        const scalar_t* mi = mp + (i / C) * N;
        scalar_t* ri = rp + i * N;
        for (int64_t p = 0; p < N; ++p) ri[p] = f * gi[p] * mi[p];
      }
    });
  });
  return result;
}

}  // namespace

TORCH_LIBRARY_FRAGMENT(restore, m) {
  m.def("masked_gradient_penalty(Tensor grad, Tensor mask, float eps) -> Tensor");
  m.def("_masked_gradient_penalty_backward(Tensor grad_out, Tensor grad, Tensor mask, float eps) -> Tensor");
}

TORCH_LIBRARY_IMPL(restore, CPU, m) {
  m.impl("masked_gradient_penalty", &masked_gradient_penalty_cpu);
  m.impl("_masked_gradient_penalty_backward", &masked_gradient_penalty_backward_cpu);
}

}  // namespace restore
