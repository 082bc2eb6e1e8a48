// CUDA kernels of restore::csa_propagate (see csrc/ops/csa_propagate.cpp for the
// semantics). One block per image walks the positions in raster order; at a hole
// position the block reduces dot(f_i, m_{i-1}), |f_i|^2 and |m_{i-1}|^2 over the
// channels, every thread derives the same weight and updates its own channels.
// A thread only ever reads back the channels it wrote, so steps need no barrier
// beyond the reduction's. Out-of-range indices cannot be reported without a
// device sync: they are treated as -1 ("no match").
#include "common.cuh"

namespace restore_cuda {
namespace {

// Sums of three values over the block, returned to every thread; shared holds 99 A's.
template <typename A>
__device__ void block_sum3(A& x, A& y, A& z, A* shared) {
  const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5, warps = (blockDim.x + 31) >> 5;
  x = warp_sum(x);
  y = warp_sum(y);
  z = warp_sum(z);
  if (lane == 0) {
    shared[warp] = x;
    shared[33 + warp] = y;
    shared[66 + warp] = z;
  }
  __syncthreads();
  if (warp == 0) {
    A a = lane < warps ? shared[lane] : A(0);
    A b = lane < warps ? shared[33 + lane] : A(0);
    A c = lane < warps ? shared[66 + lane] : A(0);
    a = warp_sum(a);
    b = warp_sum(b);
    c = warp_sum(c);
    if (lane == 0) {
      shared[32] = a;
      shared[65] = b;
      shared[98] = c;
    }
  }
  __syncthreads();
  x = shared[32];
  y = shared[65];
  z = shared[98];
  __syncthreads();
}

// The weight of the step at position p following hole position prev (block-uniform).
template <typename T>
__device__ acc_t<T> step_weight(const T* f, const T* m, int64_t C, int64_t N, int64_t p, int64_t prev,
                                acc_t<T> dmax, acc_t<T>* shared) {
  using A = acc_t<T>;
  A dot = 0, ff = 0, mm = 0;
  for (int64_t c = threadIdx.x; c < C; c += blockDim.x) {
    const A fv = to_acc(f[c * N + p]);
    const A mv = to_acc(m[c * N + prev]);
    dot += fv * mv;
    ff += fv * fv;
    mm += mv * mv;
  }
  block_sum3(dot, ff, mm, shared);
  const A floor = A(kNormFloor);
  const A nf = sqrt(ff), nm = sqrt(mm);
  const A cosine = dot / ((nf > floor ? nf : floor) * (nm > floor ? nm : floor));
  const A dad = cosine > A(0) ? cosine : A(0);
  const A total = dad + dmax;
  return total > A(0) ? dad / total : A(0);
}

template <typename T>
__device__ __forceinline__ acc_t<T> clamped_score(const T* score, int64_t p, bool matched) {
  using A = acc_t<T>;
  const A s = to_acc(score[p]);
  return matched && s > A(0) ? s : A(0);
}

template <typename T>
__global__ void csa_forward_kernel(const T* __restrict__ features, const bool* __restrict__ hole,
                                   const int64_t* __restrict__ index, const T* __restrict__ score, int64_t C,
                                   int64_t N, T* __restrict__ out) {
  using A = acc_t<T>;
  __shared__ A shared[99];
  const int64_t b = blockIdx.x;
  const T* f = features + b * C * N;
  T* o = out + b * C * N;
  const bool* h = hole + b * N;
  const int64_t* idx = index + b * N;
  const T* sc = score + b * N;
  int64_t prev = -1;
  for (int64_t p = 0; p < N; ++p) {
    if (!h[p]) continue;
    const int64_t j = idx[p];
    const bool matched = j >= 0 && j < N;
    const A w = prev >= 0 ? step_weight(f, o, C, N, p, prev, clamped_score(sc, p, matched), shared) : A(0);
    for (int64_t c = threadIdx.x; c < C; c += blockDim.x) {
      const A mbar = matched ? to_acc(f[c * N + j]) : A(0);
      const A mprev = prev >= 0 ? to_acc(o[c * N + prev]) : A(0);
      o[c * N + p] = from_acc<T>(w * mprev + (A(1) - w) * mbar);
    }
    prev = p;
  }
}

template <typename T>
__global__ void csa_backward_kernel(const T* __restrict__ grad, const T* __restrict__ features,
                                    const bool* __restrict__ hole, const int64_t* __restrict__ index,
                                    const T* __restrict__ score, const T* __restrict__ output, int64_t C, int64_t N,
                                    acc_t<T>* __restrict__ weights, acc_t<T>* __restrict__ carry,
                                    acc_t<T>* __restrict__ grad_features) {
  using A = acc_t<T>;
  __shared__ A shared[99];
  const int64_t b = blockIdx.x;
  const T* f = features + b * C * N;
  const T* o = output + b * C * N;
  const T* g = grad + b * C * N;
  const bool* h = hole + b * N;
  const int64_t* idx = index + b * N;
  const T* sc = score + b * N;
  A* wb = weights + b * N;
  A* cb = carry + b * C;
  A* df = grad_features + b * C * N;
  // Pass 1: the weights, recomputed from the output (m_{i-1} = output at the previous hole).
  int64_t prev = -1;
  for (int64_t p = 0; p < N; ++p) {
    if (!h[p]) continue;
    const int64_t j = idx[p];
    const bool matched = j >= 0 && j < N;
    const A w = prev >= 0 ? step_weight(f, o, C, N, p, prev, clamped_score(sc, p, matched), shared) : A(0);
    if (threadIdx.x == 0) wb[p] = w;
    prev = p;
  }
  __syncthreads();
  // Pass 2: reverse scan. g_i = grad_i + carry; d mbar_i = (1 - w_i) g_i; carry = w_i g_i.
  for (int64_t p = N - 1; p >= 0; --p) {
    if (!h[p]) continue;
    const int64_t j = idx[p];
    const bool matched = j >= 0 && j < N;
    const A w = wb[p];
    for (int64_t c = threadIdx.x; c < C; c += blockDim.x) {
      const A total = to_acc(g[c * N + p]) + cb[c];
      if (matched) df[c * N + j] += (A(1) - w) * total;
      cb[c] = w * total;
    }
  }
}

template <typename T>
__global__ void csa_known_grad_kernel(const T* __restrict__ grad, const bool* __restrict__ hole, int64_t B,
                                      int64_t C, int64_t N, acc_t<T>* __restrict__ grad_features) {
  using A = acc_t<T>;
  for (int64_t i = global_thread(); i < B * C * N; i += global_stride()) {
    const int64_t p = i % N, b = i / (C * N);
    grad_features[i] = hole[b * N + p] ? A(0) : to_acc(grad[i]);
  }
}

inline int threads_for_channels(int64_t C) {
  const int64_t t = ((C + 31) / 32) * 32;
  return static_cast<int>(t < 32 ? 32 : (t > kThreads ? kThreads : t));
}

}  // namespace
}  // namespace restore_cuda

using namespace restore_cuda;

extern "C" cudaError_t restore_csa_propagate_cuda(int dtype, const void* features, const bool* hole,
                                                  const int64_t* index, const void* score, int64_t B, int64_t C,
                                                  int64_t N, void* out, cudaStream_t stream) {
  if (B * C * N == 0) return cudaSuccess;
  RESTORE_DISPATCH_DTYPE(dtype, csa_forward_kernel<scalar_t>
                         <<<static_cast<unsigned int>(B), threads_for_channels(C), 0, stream>>>(
                             static_cast<const scalar_t*>(features), hole, index,
                             static_cast<const scalar_t*>(score), C, N, static_cast<scalar_t*>(out)));
  return cudaGetLastError();
}

extern "C" cudaError_t restore_csa_propagate_backward_cuda(int dtype, const void* grad, const void* features,
                                                           const bool* hole, const int64_t* index, const void* score,
                                                           const void* output, int64_t B, int64_t C, int64_t N,
                                                           void* weights, void* carry, void* grad_features,
                                                           cudaStream_t stream) {
  if (B * C * N == 0) return cudaSuccess;
  RESTORE_DISPATCH_DTYPE(dtype, csa_backward_kernel<scalar_t>
                         <<<static_cast<unsigned int>(B), threads_for_channels(C), 0, stream>>>(
                             static_cast<const scalar_t*>(grad), static_cast<const scalar_t*>(features), hole,
                             index, static_cast<const scalar_t*>(score), static_cast<const scalar_t*>(output), C, N,
                             static_cast<acc_t<scalar_t>*>(weights), static_cast<acc_t<scalar_t>*>(carry),
                             static_cast<acc_t<scalar_t>*>(grad_features)));
  return cudaGetLastError();
}

extern "C" cudaError_t restore_csa_known_grad_cuda(int dtype, const void* grad, const bool* hole, int64_t B,
                                                   int64_t C, int64_t N, void* grad_features, cudaStream_t stream) {
  if (B * C * N == 0) return cudaSuccess;
  RESTORE_DISPATCH_DTYPE(dtype, csa_known_grad_kernel<scalar_t><<<grid_for(B * C * N), kThreads, 0, stream>>>(
                                    static_cast<const scalar_t*>(grad), hole, B, C, N,
                                    static_cast<acc_t<scalar_t>*>(grad_features)));
  return cudaGetLastError();
}
