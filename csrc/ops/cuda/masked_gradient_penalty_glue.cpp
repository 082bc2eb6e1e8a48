// CUDA registration of restore::masked_gradient_penalty and its backward
// (kernels in csrc/ops/cuda/masked_gradient_penalty.cu).
#include <ATen/core/Tensor.h>
#include <ATen/ops/empty.h>
#include <ATen/ops/empty_like.h>
#include <torch/library.h>

#include "glue.h"

namespace restore {
namespace {

// Per-(sample, chunk) partial sums of g^2 m, in the accumulation dtype.
at::Tensor partial_sums(const at::Tensor& g, const at::Tensor& m, int code, cudaStream_t stream) {
  const int64_t B = g.size(0), C = g.size(1), N = g.size(2) * g.size(3);
  const int64_t chunks = restore_penalty_chunks(C, N);
  auto partials = at::empty({B, chunks}, g.options().dtype(acc_dtype(g)));
  RESTORE_LAUNCH_CHECK(
      restore_penalty_partial_sums_cuda(code, g.data_ptr(), m.data_ptr(), B, C, N, chunks, partials.data_ptr(), stream));
  return partials;
}

at::Tensor masked_gradient_penalty_cuda(const at::Tensor& grad, const at::Tensor& mask, double eps) {
  check_penalty_inputs(grad, mask, eps);
  check_cuda(grad, "grad");
  TORCH_CHECK_VALUE(grad.size(0) > 0, "grad must have a non-empty batch (the penalty is a mean over it)");
  const int code = dtype_code(grad, "grad");
  const c10::cuda::CUDAGuard guard(grad.device());
  const auto stream = current_stream();
  const auto g = grad.contiguous(), m = mask.contiguous();
  const auto partials = partial_sums(g, m, code, stream);
  auto penalty = at::empty({}, g.options());
  RESTORE_LAUNCH_CHECK(restore_penalty_finish_cuda(code, partials.data_ptr(), g.size(0), partials.size(1), eps,
                                                   /*grad_out=*/nullptr, penalty.data_ptr(), /*factor=*/nullptr,
                                                   stream));
  return penalty;
}

at::Tensor masked_gradient_penalty_backward_cuda(const at::Tensor& grad_out, const at::Tensor& grad,
                                                 const at::Tensor& mask, double eps) {
  check_penalty_inputs(grad, mask, eps);
  check_cuda(grad, "grad");
  TORCH_CHECK_VALUE(grad.size(0) > 0, "grad must have a non-empty batch (the penalty is a mean over it)");
  TORCH_CHECK_VALUE(grad_out.numel() == 1, "grad_out must hold one value, got shape ", grad_out.sizes());
  TORCH_CHECK_TYPE(grad_out.scalar_type() == grad.scalar_type(), "grad_out must have the dtype of grad (",
                   grad.scalar_type(), "), got ", grad_out.scalar_type());
  TORCH_CHECK_VALUE(grad_out.device() == grad.device(), "grad_out must be on the device of grad (", grad.device(),
                    "), got ", grad_out.device());
  const int code = dtype_code(grad, "grad");
  const c10::cuda::CUDAGuard guard(grad.device());
  const auto stream = current_stream();
  const auto g = grad.contiguous(), m = mask.contiguous(), go = grad_out.contiguous();
  const int64_t B = g.size(0), C = g.size(1), N = g.size(2) * g.size(3);
  const auto partials = partial_sums(g, m, code, stream);
  auto factor = at::empty({B}, g.options().dtype(acc_dtype(g)));
  RESTORE_LAUNCH_CHECK(restore_penalty_finish_cuda(code, partials.data_ptr(), B, partials.size(1), eps,
                                                   go.data_ptr(), /*penalty=*/nullptr, factor.data_ptr(), stream));
  auto result = at::empty_like(g);
  RESTORE_LAUNCH_CHECK(restore_penalty_backward_cuda(code, g.data_ptr(), m.data_ptr(), factor.data_ptr(), B, C, N,
                                                     result.data_ptr(), stream));
  return result;
}

}  // namespace

TORCH_LIBRARY_IMPL(restore, CUDA, m) {
  m.impl("masked_gradient_penalty", &masked_gradient_penalty_cuda);
  m.impl("_masked_gradient_penalty_backward", &masked_gradient_penalty_backward_cuda);
}

}  // namespace restore
