// Helpers of the CUDA glue (*_glue.cpp): device checks, dtype codes for the launchers,
// the current stream and the launch check.
#pragma once

#include <ATen/core/Tensor.h>
#include <ATen/ops/empty.h>
#include <c10/cuda/CUDAException.h>
#include <c10/cuda/CUDAGuard.h>
#include <c10/cuda/CUDAStream.h>

#include "../common.h"
#include "launch.h"

// Every launcher enqueues one kernel and returns cudaGetLastError(): check it.
#define RESTORE_LAUNCH_CHECK(call) C10_CUDA_CHECK(call)

namespace restore {

inline void check_cuda(const at::Tensor& t, const char* name) {
  TORCH_CHECK_VALUE(t.is_cuda(), name, " must be a CUDA tensor for the CUDA kernel, got ", t.device());
}

// The RestoreDtype of a tensor; float16, bfloat16, float32 and float64 are supported.
inline int dtype_code(const at::Tensor& t, const char* name) {
  switch (t.scalar_type()) {
    case at::kFloat:
      return kRestoreFloat32;
    case at::kDouble:
      return kRestoreFloat64;
    case at::kHalf:
      return kRestoreFloat16;
    case at::kBFloat16:
      return kRestoreBFloat16;
    default:
      TORCH_CHECK_TYPE(false, name, ": the CUDA kernel supports float16, bfloat16, float32 and float64, got ",
                       t.scalar_type());
  }
  return -1;
}

// The accumulation dtype of the launchers' "acc" buffers.
inline at::ScalarType acc_dtype(const at::Tensor& t) {
  return t.scalar_type() == at::kDouble ? at::kDouble : at::kFloat;
}

inline cudaStream_t current_stream() { return c10::cuda::getCurrentCUDAStream().stream(); }

// Normalised patch columns (B, D, N) of x and their norms (B, N).
inline void unit_columns(const at::Tensor& x, int64_t ksize, int code, at::Tensor& col, at::Tensor& norms,
                  cudaStream_t stream) {
  const int64_t B = x.size(0), C = x.size(1), H = x.size(2), W = x.size(3);
  col = at::empty({B, C * ksize * ksize, H * W}, x.options());
  norms = at::empty({B, H * W}, x.options().dtype(acc_dtype(x)));
  RESTORE_LAUNCH_CHECK(restore_im2col_cuda(code, x.data_ptr(), B, C, H, W, ksize, col.data_ptr(), stream));
  RESTORE_LAUNCH_CHECK(
      restore_normalise_columns_cuda(code, col.data_ptr(), norms.data_ptr(), B, col.size(1), H * W, stream));
}

inline at::Tensor usable_keys(const at::Tensor& valid, int64_t H, int64_t W, int64_t ksize, cudaStream_t stream) {
  auto usable = at::empty({valid.size(0), H * W}, valid.options().dtype(at::kByte));
  RESTORE_LAUNCH_CHECK(restore_usable_keys_cuda(valid.data_ptr<bool>(), valid.size(0), H, W, ksize,
                                                usable.data_ptr<uint8_t>(), stream));
  return usable;
}

}  // namespace restore
