// CUDA registration of restore::patch_best_match and its backward. Images in groups:
// normalised columns of the group, then blocks of keys, each one batched cuBLAS GEMM
// into a reused buffer of at most kBlockElements scores and one update kernel
// (csrc/ops/cuda/patch_best_match.cu). A group holds as many whole images as the
// buffer takes (one key block each), or one image split into key blocks when its own
// (H*W)^2 scores do not fit. The (B, H*W, H*W) volume is never built.
#include <ATen/core/Tensor.h>
#include <ATen/ops/bmm.h>
#include <ATen/ops/empty.h>
#include <ATen/ops/empty_like.h>
#include <ATen/ops/full.h>
#include <ATen/ops/zeros.h>
#include <torch/library.h>

#include <limits>

#include "glue.h"

namespace restore {
namespace {

// Scores per GEMM block (16 MiB of float32).
constexpr int64_t kBlockElements = int64_t(1) << 22;

std::tuple<at::Tensor, at::Tensor> patch_best_match_cuda(const at::Tensor& query, const at::Tensor& keys,
                                                         const at::Tensor& key_valid, int64_t ksize) {
  check_patch_inputs(query, keys, key_valid, ksize);
  check_cuda(query, "query");
  const int code = dtype_code(query, "query");
  const c10::cuda::CUDAGuard guard(query.device());
  const auto stream = current_stream();
  const auto q = query.contiguous(), kk = keys.contiguous(), valid = key_valid.contiguous();
  const int64_t B = q.size(0), H = q.size(2), W = q.size(3), N = H * W;
  auto index = at::full({B, H, W}, -1, q.options().dtype(at::kLong));
  auto best = at::full({B, N}, -std::numeric_limits<double>::infinity(), q.options().dtype(acc_dtype(q)));
  auto score = at::empty({B, H, W}, q.options());
  if (index.numel() == 0) return {index, score};
  const auto usable = usable_keys(valid, H, W, ksize, stream);
  const int64_t images = std::max<int64_t>(1, std::min<int64_t>(B, kBlockElements / (N * N)));
  const int64_t block = images > 1 ? N : std::max<int64_t>(1, std::min<int64_t>(N, kBlockElements / N));
  auto buffer = at::empty({images * block * N}, q.options());
  for (int64_t b0 = 0; b0 < B; b0 += images) {
    const int64_t g = std::min(images, B - b0);
    at::Tensor qcol, qnorm, kcol, knorm;
    unit_columns(q.narrow(0, b0, g), ksize, code, qcol, qnorm, stream);
    unit_columns(kk.narrow(0, b0, g), ksize, code, kcol, knorm, stream);
    for (int64_t k0 = 0; k0 < N; k0 += block) {
      const int64_t kb = std::min(block, N - k0);
      auto scores = buffer.narrow(0, 0, g * kb * N).view({g, kb, N});
      at::bmm_out(scores, kcol.narrow(2, k0, kb).transpose(1, 2), qcol);  // (g, kb, D) x (g, D, N)
      RESTORE_LAUNCH_CHECK(restore_best_match_update_cuda(code, scores.data_ptr(), usable.data_ptr<uint8_t>() + b0 * N,
                                                          g, N, k0, kb, best.narrow(0, b0, g).data_ptr(),
                                                          index.data_ptr<int64_t>() + b0 * N, stream));
    }
  }
  RESTORE_LAUNCH_CHECK(restore_best_match_finish_cuda(code, best.data_ptr(), B, N, score.data_ptr(), stream));
  return {index, score};
}

std::tuple<at::Tensor, at::Tensor> patch_best_match_backward_cuda(const at::Tensor& grad_score,
                                                                  const at::Tensor& query, const at::Tensor& keys,
                                                                  const at::Tensor& index, int64_t ksize) {
  check_features(query, "query");
  check_like(keys, "keys", query, "query");
  check_positions(grad_score, "grad_score", query, query.scalar_type());
  check_positions(index, "index", query, at::kLong);
  check_ksize(ksize);
  check_cuda(query, "query");
  const int code = dtype_code(query, "query");
  const c10::cuda::CUDAGuard guard(query.device());
  const auto stream = current_stream();
  const auto q = query.contiguous(), kk = keys.contiguous(), g = grad_score.contiguous(), idx = index.contiguous();
  const int64_t B = q.size(0), C = q.size(1), H = q.size(2), W = q.size(3), N = H * W;
  auto grad_query = at::empty_like(q), grad_keys = at::empty_like(kk);
  if (q.numel() == 0) return {grad_query, grad_keys};
  at::Tensor qcol, qnorm, kcol, knorm;
  unit_columns(q, ksize, code, qcol, qnorm, stream);
  unit_columns(kk, ksize, code, kcol, knorm, stream);
  const int64_t D = qcol.size(1);
  auto dq = at::empty_like(qcol);
  auto dk_acc = at::zeros({B, D, N}, q.options().dtype(acc_dtype(q)));
  RESTORE_LAUNCH_CHECK(restore_best_match_backward_cuda(code, g.data_ptr(), idx.data_ptr<int64_t>(), qcol.data_ptr(),
                                                        kcol.data_ptr(), B, D, N, dq.data_ptr(), dk_acc.data_ptr(),
                                                        stream));
  auto dk = dk_acc.to(q.scalar_type());
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
  m.impl("patch_best_match", &patch_best_match_cuda);
  m.impl("_patch_best_match_backward", &patch_best_match_backward_cuda);
}

}  // namespace restore
