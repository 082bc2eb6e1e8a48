// restore::patch_similarity — the full cosine-similarity volume of k×k patches.
//
//   out[b, pk, y, x] = <unit(keys patch at pk), unit(query patch at (y, x))>,  -inf where key pk is unusable
//
// with unit(v) = v / max(||v||, 1e-4), zero padding outside the image, flat
// positions pk = yk*W + xk, and a key usable when every in-image position of its
// window is valid (see restore/ops/patch_similarity.py). CPU: im2col, column
// normalisation, one GEMM per image (at::mm_out), -inf rows.
#include <ATen/Dispatch.h>
#include <ATen/core/Tensor.h>
#include <ATen/ops/empty.h>
#include <ATen/ops/empty_like.h>
#include <ATen/ops/mm.h>
#include <torch/library.h>

#include <limits>

#include "common.h"
#include "patch_cpu.h"

namespace restore {
namespace {

at::Tensor patch_similarity_cpu(const at::Tensor& query, const at::Tensor& keys, const at::Tensor& key_valid,
                                int64_t ksize) {
  check_patch_inputs(query, keys, key_valid, ksize);
  check_cpu_float(query, "query");
  const auto q = query.contiguous(), kk = keys.contiguous();
  const auto valid = key_valid.contiguous();
  const int64_t B = q.size(0), C = q.size(1), H = q.size(2), W = q.size(3), N = H * W, D = C * ksize * ksize;
  auto out = at::empty({B, N, H, W}, q.options());
  if (out.numel() == 0) return out;
  auto qcol = at::empty({D, N}, q.options()), kcol = at::empty({D, N}, q.options());
  AT_DISPATCH_FLOATING_TYPES(q.scalar_type(), "patch_similarity_cpu", [&] {
    std::vector<scalar_t> qnorm, knorm;
    std::vector<uint8_t> usable;
    for (int64_t b = 0; b < B; ++b) {
      cpu::im2col(q.data_ptr<scalar_t>() + b * C * N, C, H, W, ksize, qcol.data_ptr<scalar_t>());
      cpu::normalise_columns(qcol.data_ptr<scalar_t>(), D, N, qnorm);
      cpu::im2col(kk.data_ptr<scalar_t>() + b * C * N, C, H, W, ksize, kcol.data_ptr<scalar_t>());
      cpu::normalise_columns(kcol.data_ptr<scalar_t>(), D, N, knorm);
      auto scores = out.select(0, b).view({N, N});  // (keys, queries)
      at::mm_out(scores, kcol.t(), qcol);
      cpu::usable_keys(valid.data_ptr<bool>() + b * N, H, W, ksize, usable);
      scalar_t* s = scores.data_ptr<scalar_t>();
      at::parallel_for(0, N, cpu::grain_for(N), [&](int64_t j0, int64_t j1) {
        for (int64_t j = j0; j < j1; ++j)
          if (!usable[j]) std::fill(s + j * N, s + (j + 1) * N, -std::numeric_limits<scalar_t>::infinity());
      });
    }
  });
  return out;
}

std::tuple<at::Tensor, at::Tensor> patch_similarity_backward_cpu(const at::Tensor& grad, const at::Tensor& query,
                                                                 const at::Tensor& keys,
                                                                 const at::Tensor& key_valid, int64_t ksize) {
  check_patch_inputs(query, keys, key_valid, ksize);
  check_cpu_float(query, "query");
  const int64_t B = query.size(0), C = query.size(1), H = query.size(2), W = query.size(3), N = H * W,
                D = C * ksize * ksize;
  TORCH_CHECK_VALUE(grad.dim() == 4 && grad.size(0) == B && grad.size(1) == N && grad.size(2) == H &&
                        grad.size(3) == W,
                    "grad must have shape (B, H*W, H, W) = (", B, ", ", N, ", ", H, ", ", W, "), got ",
                    grad.sizes());
  TORCH_CHECK_TYPE(grad.scalar_type() == query.scalar_type(), "grad must have the dtype of query (",
                   query.scalar_type(), "), got ", grad.scalar_type());
  const auto q = query.contiguous(), kk = keys.contiguous(), g = grad.contiguous();
  const auto valid = key_valid.contiguous();
  auto grad_query = at::empty_like(q), grad_keys = at::empty_like(kk);
  if (q.numel() == 0) return {grad_query, grad_keys};
  auto qcol = at::empty({D, N}, q.options()), kcol = at::empty({D, N}, q.options());
  auto dq = at::empty({D, N}, q.options()), dk = at::empty({D, N}, q.options());
  auto gm = at::empty({N, N}, q.options());
  AT_DISPATCH_FLOATING_TYPES(q.scalar_type(), "patch_similarity_backward_cpu", [&] {
    std::vector<scalar_t> qnorm, knorm;
    std::vector<uint8_t> usable;
    for (int64_t b = 0; b < B; ++b) {
      cpu::im2col(q.data_ptr<scalar_t>() + b * C * N, C, H, W, ksize, qcol.data_ptr<scalar_t>());
      cpu::normalise_columns(qcol.data_ptr<scalar_t>(), D, N, qnorm);
      cpu::im2col(kk.data_ptr<scalar_t>() + b * C * N, C, H, W, ksize, kcol.data_ptr<scalar_t>());
      cpu::normalise_columns(kcol.data_ptr<scalar_t>(), D, N, knorm);
      cpu::usable_keys(valid.data_ptr<bool>() + b * N, H, W, ksize, usable);
      // The -inf entries of unusable keys are constants: their gradient is dropped.
      const scalar_t* gb = g.data_ptr<scalar_t>() + b * N * N;
      scalar_t* gmb = gm.data_ptr<scalar_t>();
      at::parallel_for(0, N, cpu::grain_for(N), [&](int64_t j0, int64_t j1) {
        for (int64_t j = j0; j < j1; ++j) {
          if (usable[j])
            std::copy(gb + j * N, gb + (j + 1) * N, gmb + j * N);
          else
            std::fill(gmb + j * N, gmb + (j + 1) * N, scalar_t(0));
        }
      });
      at::mm_out(dq, kcol, gm);      // (D, Nk) x (Nk, Nq)
      at::mm_out(dk, qcol, gm.t());  // (D, Nq) x (Nq, Nk)
      cpu::normalise_columns_backward(qcol.data_ptr<scalar_t>(), qnorm, D, N, dq.data_ptr<scalar_t>());
      cpu::normalise_columns_backward(kcol.data_ptr<scalar_t>(), knorm, D, N, dk.data_ptr<scalar_t>());
      cpu::col2im(dq.data_ptr<scalar_t>(), C, H, W, ksize, grad_query.data_ptr<scalar_t>() + b * C * N);
      cpu::col2im(dk.data_ptr<scalar_t>(), C, H, W, ksize, grad_keys.data_ptr<scalar_t>() + b * C * N);
    }
  });
  return {grad_query, grad_keys};
}

}  // namespace

TORCH_LIBRARY_FRAGMENT(restore, m) {
  m.def("patch_similarity(Tensor query, Tensor keys, Tensor key_valid, int ksize) -> Tensor");
  m.def(
      "_patch_similarity_backward(Tensor grad, Tensor query, Tensor keys, Tensor key_valid, int ksize) "
      "-> (Tensor, Tensor)");
}

TORCH_LIBRARY_IMPL(restore, CPU, m) {
  m.impl("patch_similarity", &patch_similarity_cpu);
  m.impl("_patch_similarity_backward", &patch_similarity_backward_cpu);
}

}  // namespace restore
