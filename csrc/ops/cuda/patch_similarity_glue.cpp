// CUDA registration of restore::patch_similarity and its backward: checks, the
// columns (csrc/ops/cuda/patch_similarity.cu) and one batched cuBLAS GEMM (at::bmm_out).
#include <ATen/core/Tensor.h>
#include <ATen/ops/bmm.h>
#include <ATen/ops/empty.h>
#include <ATen/ops/empty_like.h>
#include <torch/library.h>

#include "glue.h"

namespace restore {
namespace {

at::Tensor patch_similarity_cuda(const at::Tensor& query, const at::Tensor& keys, const at::Tensor& key_valid,
                                 int64_t ksize) {
  check_patch_inputs(query, keys, key_valid, ksize);
  check_cuda(query, "query");
  const int code = dtype_code(query, "query");
  const c10::cuda::CUDAGuard guard(query.device());
  const auto stream = current_stream();
  const auto q = query.contiguous(), kk = keys.contiguous(), valid = key_valid.contiguous();
  const int64_t B = q.size(0), H = q.size(2), W = q.size(3), N = H * W;
  auto out = at::empty({B, N, H, W}, q.options());
  if (out.numel() == 0) return out;
  at::Tensor qcol, qnorm, kcol, knorm;
  unit_columns(q, ksize, code, qcol, qnorm, stream);
  unit_columns(kk, ksize, code, kcol, knorm, stream);
  auto scores = out.view({B, N, N});
  at::bmm_out(scores, kcol.transpose(1, 2), qcol);  // (B, Nk, D) x (B, D, Nq)
  const auto usable = usable_keys(valid, H, W, ksize, stream);
  RESTORE_LAUNCH_CHECK(
      restore_mask_key_rows_cuda(code, out.data_ptr(), usable.data_ptr<uint8_t>(), B, N, /*neg_inf=*/1, stream));
  return out;
}

std::tuple<at::Tensor, at::Tensor> patch_similarity_backward_cuda(const at::Tensor& grad, const at::Tensor& query,
                                                                  const at::Tensor& keys,
                                                                  const at::Tensor& key_valid, int64_t ksize) {
  check_patch_inputs(query, keys, key_valid, ksize);
  check_cuda(query, "query");
  const int64_t B = query.size(0), C = query.size(1), H = query.size(2), W = query.size(3), N = H * W;
  TORCH_CHECK_VALUE(grad.dim() == 4 && grad.size(0) == B && grad.size(1) == N && grad.size(2) == H &&
                        grad.size(3) == W,
                    "grad must have shape (B, H*W, H, W) = (", B, ", ", N, ", ", H, ", ", W, "), got ",
                    grad.sizes());
  TORCH_CHECK_TYPE(grad.scalar_type() == query.scalar_type(), "grad must have the dtype of query (",
                   query.scalar_type(), "), got ", grad.scalar_type());
  check_cuda(grad, "grad");
  const int code = dtype_code(query, "query");
  const c10::cuda::CUDAGuard guard(query.device());
  const auto stream = current_stream();
  const auto q = query.contiguous(), kk = keys.contiguous(), valid = key_valid.contiguous();
  auto grad_query = at::empty_like(q), grad_keys = at::empty_like(kk);
  if (q.numel() == 0) return {grad_query, grad_keys};
  at::Tensor qcol, qnorm, kcol, knorm;
  unit_columns(q, ksize, code, qcol, qnorm, stream);
  unit_columns(kk, ksize, code, kcol, knorm, stream);
  // The -inf entries of unusable keys are constants: zero their rows of the upstream gradient.
  auto gm = grad.contiguous().view({B, N, N}).clone();
  const auto usable = usable_keys(valid, H, W, ksize, stream);
  RESTORE_LAUNCH_CHECK(
      restore_mask_key_rows_cuda(code, gm.data_ptr(), usable.data_ptr<uint8_t>(), B, N, /*neg_inf=*/0, stream));
  auto dq = at::bmm(kcol, gm);                 // (B, D, Nk) x (B, Nk, Nq)
  auto dk = at::bmm(qcol, gm.transpose(1, 2));  // (B, D, Nq) x (B, Nq, Nk)
  const int64_t D = qcol.size(1);
  RESTORE_LAUNCH_CHECK(restore_normalise_columns_backward_cuda(code, qcol.data_ptr(), qnorm.data_ptr(),
                                                               dq.data_ptr(), B, D, N, stream));
  RESTORE_LAUNCH_CHECK(restore_normalise_columns_backward_cuda(code, kcol.data_ptr(), knorm.data_ptr(),
                                                               dk.data_ptr(), B, D, N, stream));
  RESTORE_LAUNCH_CHECK(restore_col2im_cuda(code, dq.data_ptr(), B, C, H, W, ksize, grad_query.data_ptr(), stream));
  RESTORE_LAUNCH_CHECK(restore_col2im_cuda(code, dk.data_ptr(), B, C, H, W, ksize, grad_keys.data_ptr(), stream));
  return {grad_query, grad_keys};
}

}  // namespace

TORCH_LIBRARY_IMPL(restore, CUDA, m) {
  m.impl("patch_similarity", &patch_similarity_cuda);
  m.impl("_patch_similarity_backward", &patch_similarity_backward_cuda);
}

}  // namespace restore
