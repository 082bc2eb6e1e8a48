// Device helpers shared by the .cu files (no torch headers).
#pragma once

#include <cuda_bf16.h>
#include <cuda_fp16.h>
#include <cuda_runtime.h>
#include <stdint.h>

#include "launch.h"

namespace restore_cuda {

constexpr double kNormFloor = 1e-4;
constexpr int kThreads = 256;

// Accumulation type: float for the 16-bit types and float, double for double.
template <typename T>
struct Acc {
  using type = float;
};
template <>
struct Acc<double> {
  using type = double;
};
template <typename T>
using acc_t = typename Acc<T>::type;

// Explicit conversions (torch builds with __CUDA_NO_HALF_CONVERSIONS__ and friends).
template <typename T>
__device__ __forceinline__ acc_t<T> to_acc(T v) {
  return static_cast<acc_t<T>>(v);
}
template <>
__device__ __forceinline__ float to_acc<__half>(__half v) {
  return __half2float(v);
}
template <>
__device__ __forceinline__ float to_acc<__nv_bfloat16>(__nv_bfloat16 v) {
  return __bfloat162float(v);
}

template <typename T>
__device__ __forceinline__ T from_acc(acc_t<T> v) {
  return static_cast<T>(v);
}
template <>
__device__ __forceinline__ __half from_acc<__half>(float v) {
  return __float2half(v);
}
template <>
__device__ __forceinline__ __nv_bfloat16 from_acc<__nv_bfloat16>(float v) {
  return __float2bfloat16(v);
}

// Grid for a grid-stride loop over n items.
inline unsigned int grid_for(int64_t n, int threads = kThreads) {
  const int64_t blocks = (n + threads - 1) / threads;
  const int64_t cap = int64_t(1) << 20;
  return static_cast<unsigned int>(blocks < 1 ? 1 : (blocks > cap ? cap : blocks));
}

__device__ __forceinline__ int64_t global_thread() {
  return static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
}
__device__ __forceinline__ int64_t global_stride() {
  return static_cast<int64_t>(gridDim.x) * blockDim.x;
}

template <typename A>
__device__ __forceinline__ A warp_sum(A v) {
  for (int offset = 16; offset > 0; offset >>= 1) v += __shfl_down_sync(0xffffffffu, v, offset);
  return v;
}

// Sum of `v` over the block, returned to every thread. `shared` holds >= 33 A's.
// Ends with a barrier, so `shared` may be reused right after.
template <typename A>
__device__ A block_sum(A v, A* shared) {
  const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5, warps = (blockDim.x + 31) >> 5;
  v = warp_sum(v);
  if (lane == 0) shared[warp] = v;
  __syncthreads();
  A total = A(0);
  if (warp == 0) {
    total = lane < warps ? shared[lane] : A(0);
    total = warp_sum(total);
    if (lane == 0) shared[32] = total;
  }
  __syncthreads();
  total = shared[32];
  __syncthreads();
  return total;
}

}  // namespace restore_cuda

// Runs `__VA_ARGS__` with `scalar_t` bound to the C++ type of a RestoreDtype; an
// unknown dtype returns cudaErrorInvalidValue from the enclosing launcher.
#define RESTORE_DISPATCH_DTYPE(dtype, ...)            \
  switch (dtype) {                                    \
    case kRestoreFloat32: {                           \
      using scalar_t = float;                         \
      __VA_ARGS__;                                    \
      break;                                          \
    }                                                 \
    case kRestoreFloat64: {                           \
      using scalar_t = double;                        \
      __VA_ARGS__;                                    \
      break;                                          \
    }                                                 \
    case kRestoreFloat16: {                           \
      using scalar_t = __half;                        \
      __VA_ARGS__;                                    \
      break;                                          \
    }                                                 \
    case kRestoreBFloat16: {                          \
      using scalar_t = __nv_bfloat16;                 \
      __VA_ARGS__;                                    \
      break;                                          \
    }                                                 \
    default:                                          \
      return cudaErrorInvalidValue;                   \
  }
