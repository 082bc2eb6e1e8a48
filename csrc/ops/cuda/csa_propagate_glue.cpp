// CUDA registration of restore::csa_propagate and its backward
// (kernels in csrc/ops/cuda/csa_propagate.cu; one block per image).
#include <ATen/core/Tensor.h>
#include <ATen/ops/empty.h>
#include <ATen/ops/zeros.h>
#include <torch/library.h>

#include "glue.h"

namespace restore {
namespace {

at::Tensor csa_propagate_cuda(const at::Tensor& features, const at::Tensor& hole, const at::Tensor& index,
                              const at::Tensor& score) {
  check_csa_inputs(features, hole, index, score);
  check_cuda(features, "features");
  const int code = dtype_code(features, "features");
  const c10::cuda::CUDAGuard guard(features.device());
  const auto stream = current_stream();
  const auto f = features.contiguous(), hl = hole.contiguous(), ix = index.contiguous(), s = score.contiguous();
  const int64_t B = f.size(0), C = f.size(1), N = f.size(2) * f.size(3);
  auto out = f.clone();  // known positions; the kernel overwrites the holes
  RESTORE_LAUNCH_CHECK(restore_csa_propagate_cuda(code, f.data_ptr(), hl.data_ptr<bool>(), ix.data_ptr<int64_t>(),
                                                  s.data_ptr(), B, C, N, out.data_ptr(), stream));
  return out;
}

at::Tensor csa_propagate_backward_cuda(const at::Tensor& grad, const at::Tensor& features, const at::Tensor& hole,
                                       const at::Tensor& index, const at::Tensor& score, const at::Tensor& output) {
  check_csa_inputs(features, hole, index, score);
  check_like(grad, "grad", features, "features");
  check_like(output, "output", features, "features");
  check_cuda(features, "features");
  const int code = dtype_code(features, "features");
  const c10::cuda::CUDAGuard guard(features.device());
  const auto stream = current_stream();
  const auto f = features.contiguous(), hl = hole.contiguous(), ix = index.contiguous(), s = score.contiguous();
  const auto g = grad.contiguous(), o = output.contiguous();
  const int64_t B = f.size(0), C = f.size(1), N = f.size(2) * f.size(3);
  const auto acc = f.options().dtype(acc_dtype(f));
  auto grad_acc = at::empty(f.sizes(), acc);
  auto weights = at::empty({B, N}, acc);
  auto carry = at::zeros({B, C}, acc);
  RESTORE_LAUNCH_CHECK(
      restore_csa_known_grad_cuda(code, g.data_ptr(), hl.data_ptr<bool>(), B, C, N, grad_acc.data_ptr(), stream));
  RESTORE_LAUNCH_CHECK(restore_csa_propagate_backward_cuda(
      code, g.data_ptr(), f.data_ptr(), hl.data_ptr<bool>(), ix.data_ptr<int64_t>(), s.data_ptr(), o.data_ptr(), B,
      C, N, weights.data_ptr(), carry.data_ptr(), grad_acc.data_ptr(), stream));
  return grad_acc.to(f.scalar_type());
}

}  // namespace

TORCH_LIBRARY_IMPL(restore, CUDA, m) {
  m.impl("csa_propagate", &csa_propagate_cuda);
  m.impl("_csa_propagate_backward", &csa_propagate_backward_cuda);
}

}  // namespace restore
