// CUDA kernels of the fused top-1 search (restore::patch_best_match). The glue runs
// one batched cuBLAS GEMM per block of (images, keys) into a small buffer (B, kb, N)
// and this file's update kernel folds it into a running (score, index) maximum per
// query, so the (B, H*W, H*W) volume never exists. See csrc/ops/patch_best_match.cpp
// for the semantics.
#include "common.cuh"

namespace restore_cuda {
namespace {

// A block takes kTileQueries consecutive queries of one image; its kSegments warps split
// the kb keys into contiguous segments, each warp scanning its segment for its 32
// queries (coalesced reads of a score row), then warp 0 folds the segment maxima into
// the running maximum in key order, so ties keep going to the smallest key.
constexpr int kTileQueries = 32;
constexpr int kSegments = kThreads / kTileQueries;

template <typename T>
__global__ void best_match_update_kernel(const T* __restrict__ scores, const uint8_t* __restrict__ usable,
                                         int64_t B, int64_t N, int64_t k0, int64_t kb,
                                         acc_t<T>* __restrict__ best_score, int64_t* __restrict__ best_index) {
  using A = acc_t<T>;
  __shared__ A segment_score[kSegments][kTileQueries];
  __shared__ int64_t segment_index[kSegments][kTileQueries];
  const int lane = threadIdx.x % kTileQueries, segment = threadIdx.x / kTileQueries;
  const int64_t tiles = (N + kTileQueries - 1) / kTileQueries;
  const int64_t per_segment = (kb + kSegments - 1) / kSegments;
  const int64_t j0 = segment * per_segment, j1 = j0 + per_segment < kb ? j0 + per_segment : kb;
  for (int64_t tile = blockIdx.x; tile < B * tiles; tile += gridDim.x) {
    const int64_t b = tile / tiles, q = (tile % tiles) * kTileQueries + lane;
    A best = -A(INFINITY);
    int64_t arg = -1;
    if (q < N) {
      const T* column = scores + b * kb * N + q;
      const uint8_t* use = usable + b * N + k0;
      for (int64_t j = j0; j < j1; ++j) {
        if (!use[j]) continue;
        const A s = to_acc(column[j * N]);
        if (s > best) {  // strict: the smallest key wins ties (as the CPU kernel)
          best = s;
          arg = k0 + j;
        }
      }
    }
    segment_score[segment][lane] = best;
    segment_index[segment][lane] = arg;
    __syncthreads();
    if (segment == 0 && q < N) {
      const int64_t i = b * N + q;
      best = best_score[i];
      arg = best_index[i];
      for (int s = 0; s < kSegments; ++s) {
        if (segment_score[s][lane] > best) {
          best = segment_score[s][lane];
          arg = segment_index[s][lane];
        }
      }
      best_score[i] = best;
      best_index[i] = arg;
    }
    __syncthreads();
  }
}

template <typename T>
__global__ void best_match_finish_kernel(const acc_t<T>* __restrict__ best_score, int64_t total, T* __restrict__ score) {
  for (int64_t i = global_thread(); i < total; i += global_stride()) score[i] = from_acc<T>(best_score[i]);
}

template <typename T>
__global__ void best_match_backward_kernel(const T* __restrict__ grad_score, const int64_t* __restrict__ index,
                                           const T* __restrict__ qunit, const T* __restrict__ kunit, int64_t B,
                                           int64_t D, int64_t N, T* __restrict__ dq, acc_t<T>* __restrict__ dk) {
  using A = acc_t<T>;
  for (int64_t i = global_thread(); i < B * D * N; i += global_stride()) {
    const int64_t q = i % N, b = i / (D * N);
    const int64_t j = index[b * N + q];
    if (j < 0 || j >= N) {
      dq[i] = from_acc<T>(A(0));
      continue;
    }
    const A g = to_acc(grad_score[b * N + q]);
    const int64_t row = i - q;  // (b * D + d) * N
    dq[i] = from_acc<T>(g * to_acc(kunit[row + j]));
    atomicAdd(dk + row + j, g * to_acc(qunit[i]));
  }
}

}  // namespace
}  // namespace restore_cuda

using namespace restore_cuda;

extern "C" cudaError_t restore_best_match_update_cuda(int dtype, const void* scores, const uint8_t* usable,
                                                      int64_t B, int64_t N, int64_t k0, int64_t kb,
                                                      void* best_score, int64_t* best_index, cudaStream_t stream) {
  if (B * N == 0 || kb == 0) return cudaSuccess;
  const int64_t tiles = B * ((N + kTileQueries - 1) / kTileQueries);
  RESTORE_DISPATCH_DTYPE(dtype, best_match_update_kernel<scalar_t><<<grid_for(tiles, 1), kThreads, 0, stream>>>(
                                    static_cast<const scalar_t*>(scores), usable, B, N, k0, kb,
                                    static_cast<acc_t<scalar_t>*>(best_score), best_index));
  return cudaGetLastError();
}

extern "C" cudaError_t restore_best_match_finish_cuda(int dtype, const void* best_score, int64_t B, int64_t N,
                                                      void* score, cudaStream_t stream) {
  if (B * N == 0) return cudaSuccess;
  RESTORE_DISPATCH_DTYPE(dtype, best_match_finish_kernel<scalar_t><<<grid_for(B * N), kThreads, 0, stream>>>(
                                    static_cast<const acc_t<scalar_t>*>(best_score), B * N,
                                    static_cast<scalar_t*>(score)));
  return cudaGetLastError();
}

extern "C" cudaError_t restore_best_match_backward_cuda(int dtype, const void* grad_score, const int64_t* index,
                                                        const void* qunit, const void* kunit, int64_t B, int64_t D,
                                                        int64_t N, void* dq, void* dk_acc, cudaStream_t stream) {
  if (B * D * N == 0) return cudaSuccess;
  RESTORE_DISPATCH_DTYPE(dtype, best_match_backward_kernel<scalar_t><<<grid_for(B * D * N), kThreads, 0, stream>>>(
                                    static_cast<const scalar_t*>(grad_score), index,
                                    static_cast<const scalar_t*>(qunit), static_cast<const scalar_t*>(kunit), B, D, N,
                                    static_cast<scalar_t*>(dq), static_cast<acc_t<scalar_t>*>(dk_acc)));
  return cudaGetLastError();
}
