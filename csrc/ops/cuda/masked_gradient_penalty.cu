// CUDA kernels of restore::masked_gradient_penalty (see csrc/ops/masked_gradient_penalty.cpp).
// Deterministic two-level reduction: per-(sample, chunk) partial sums of g^2 m, then
// one small block that adds each sample's partials in order.
#include "common.cuh"

namespace restore_cuda {
namespace {

template <typename T>
__global__ void penalty_partial_sums_kernel(const T* __restrict__ grad, const T* __restrict__ mask, int64_t C,
                                            int64_t N, int64_t chunks, acc_t<T>* __restrict__ partials) {
  using A = acc_t<T>;
  __shared__ A shared[33];
  const int64_t b = blockIdx.y, j = blockIdx.x, total = C * N;
  const int64_t len = (total + chunks - 1) / chunks;
  const int64_t start = j * len, stop = start + len < total ? start + len : total;
  const T* g = grad + b * total;
  const T* m = mask + b * N;
  A sum = 0;
  for (int64_t i = start + threadIdx.x; i < stop; i += blockDim.x) {
    const A v = to_acc(g[i]);
    sum += v * v * to_acc(m[i % N]);
  }
  sum = block_sum(sum, shared);
  if (threadIdx.x == 0) partials[b * chunks + j] = sum;
}

template <typename T>
__global__ void penalty_finish_kernel(const acc_t<T>* __restrict__ partials, int64_t B, int64_t chunks, double eps,
                                      const T* __restrict__ grad_out, T* __restrict__ penalty,
                                      acc_t<T>* __restrict__ factor) {
  using A = acc_t<T>;
  __shared__ A shared[33];
  A total = 0;
  for (int64_t b = threadIdx.x; b < B; b += blockDim.x) {
    A s = 0;
    for (int64_t j = 0; j < chunks; ++j) s += partials[b * chunks + j];
    const A slope = sqrt(s + A(eps));
    if (grad_out != nullptr)
      factor[b] = to_acc(grad_out[0]) * A(2) / A(B) * (A(1) - A(1) / slope);
    else
      total += (slope - A(1)) * (slope - A(1));
  }
  if (grad_out != nullptr) return;  // uniform: every thread returns here together
  total = block_sum(total, shared);
  if (threadIdx.x == 0) penalty[0] = from_acc<T>(total / A(B));
}

template <typename T>
__global__ void penalty_backward_kernel(const T* __restrict__ grad, const T* __restrict__ mask,
                                        const acc_t<T>* __restrict__ factor, int64_t B, int64_t C, int64_t N,
                                        T* __restrict__ result) {
  for (int64_t i = global_thread(); i < B * C * N; i += global_stride()) {
    const int64_t p = i % N, b = i / (C * N);
    result[i] = from_acc<T>(factor[b] * to_acc(grad[i]) * to_acc(mask[b * N + p]));
  }
}

}  // namespace
}  // namespace restore_cuda

using namespace restore_cuda;

extern "C" int64_t restore_penalty_chunks(int64_t C, int64_t N) {
  const int64_t chunks = (C * N + 4095) / 4096;
  return chunks < 1 ? 1 : (chunks > 1024 ? 1024 : chunks);
}

extern "C" cudaError_t restore_penalty_partial_sums_cuda(int dtype, const void* grad, const void* mask, int64_t B,
                                                         int64_t C, int64_t N, int64_t chunks, void* partials,
                                                         cudaStream_t stream) {
  if (B == 0) return cudaSuccess;
  const dim3 grid(static_cast<unsigned int>(chunks), static_cast<unsigned int>(B));
  RESTORE_DISPATCH_DTYPE(dtype, penalty_partial_sums_kernel<scalar_t><<<grid, kThreads, 0, stream>>>(
                                    static_cast<const scalar_t*>(grad), static_cast<const scalar_t*>(mask), C, N,
                                    chunks, static_cast<acc_t<scalar_t>*>(partials)));
  return cudaGetLastError();
}

extern "C" cudaError_t restore_penalty_finish_cuda(int dtype, const void* partials, int64_t B, int64_t chunks,
                                                   double eps, const void* grad_out, void* penalty, void* factor,
                                                   cudaStream_t stream) {
  if (B == 0) return cudaSuccess;
  RESTORE_DISPATCH_DTYPE(dtype, penalty_finish_kernel<scalar_t><<<1, kThreads, 0, stream>>>(
                                    static_cast<const acc_t<scalar_t>*>(partials), B, chunks, eps,
                                    static_cast<const scalar_t*>(grad_out), static_cast<scalar_t*>(penalty),
                                    static_cast<acc_t<scalar_t>*>(factor)));
  return cudaGetLastError();
}

extern "C" cudaError_t restore_penalty_backward_cuda(int dtype, const void* grad, const void* mask,
                                                     const void* factor, int64_t B, int64_t C, int64_t N,
                                                     void* result, cudaStream_t stream) {
  if (B * C * N == 0) return cudaSuccess;
  RESTORE_DISPATCH_DTYPE(dtype, penalty_backward_kernel<scalar_t><<<grid_for(B * C * N), kThreads, 0, stream>>>(
                                    static_cast<const scalar_t*>(grad), static_cast<const scalar_t*>(mask),
                                    static_cast<const acc_t<scalar_t>*>(factor), B, C, N,
                                    static_cast<scalar_t*>(result)));
  return cudaGetLastError();
}
