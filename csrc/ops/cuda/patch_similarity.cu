// CUDA building blocks of the patch ops: patch columns, their normalisation and
// its backward, the adjoint of im2col, usable keys and -inf rows. The GEMMs are
// cuBLAS calls made by the glue (at::bmm / at::mm); see csrc/ops/patch_similarity.cpp
// for the semantics.
#include "common.cuh"

namespace restore_cuda {
namespace {

template <typename T>
__global__ void im2col_kernel(const T* __restrict__ x, int64_t B, int64_t C, int64_t H, int64_t W, int64_t k,
                              T* __restrict__ col) {
  const int64_t N = H * W, D = C * k * k, total = B * D * N, r = k / 2;
  for (int64_t i = global_thread(); i < total; i += global_stride()) {
    const int64_t p = i % N, d = (i / N) % D, b = i / (N * D);
    const int64_t c = d / (k * k), dy = (d / k) % k - r, dx = d % k - r;
    const int64_t y = p / W + dy, xx = p % W + dx;
    col[i] = (y >= 0 && y < H && xx >= 0 && xx < W) ? x[(b * C + c) * N + y * W + xx] : from_acc<T>(acc_t<T>(0));
  }
}

template <typename T>
__global__ void normalise_columns_kernel(T* __restrict__ col, acc_t<T>* __restrict__ norms, int64_t B, int64_t D,
                                         int64_t N) {
  using A = acc_t<T>;
  for (int64_t i = global_thread(); i < B * N; i += global_stride()) {
    const int64_t b = i / N, p = i % N;
    T* column = col + b * D * N + p;
    A sum = 0;
    for (int64_t d = 0; d < D; ++d) {
      const A v = to_acc(column[d * N]);
      sum += v * v;
    }
    const A norm = sqrt(sum);
    norms[i] = norm;
    const A inv = A(1) / (norm > A(kNormFloor) ? norm : A(kNormFloor));
    for (int64_t d = 0; d < D; ++d) column[d * N] = from_acc<T>(to_acc(column[d * N]) * inv);
  }
}

template <typename T>
__global__ void normalise_columns_backward_kernel(const T* __restrict__ unit, const acc_t<T>* __restrict__ norms,
                                                  T* __restrict__ grad, int64_t B, int64_t D, int64_t N) {
  using A = acc_t<T>;
  for (int64_t i = global_thread(); i < B * N; i += global_stride()) {
    const int64_t b = i / N, p = i % N;
    const T* u = unit + b * D * N + p;
    T* g = grad + b * D * N + p;
    A dot = 0;
    for (int64_t d = 0; d < D; ++d) dot += to_acc(u[d * N]) * to_acc(g[d * N]);
    const bool above = norms[i] >= A(kNormFloor);
    const A inv = A(1) / (above ? norms[i] : A(kNormFloor));
    const A proj = above ? dot : A(0);
    for (int64_t d = 0; d < D; ++d) g[d * N] = from_acc<T>((to_acc(g[d * N]) - to_acc(u[d * N]) * proj) * inv);
  }
}

template <typename T>
__global__ void col2im_kernel(const T* __restrict__ col, int64_t B, int64_t C, int64_t H, int64_t W, int64_t k,
                              T* __restrict__ dx) {
  using A = acc_t<T>;
  const int64_t N = H * W, D = C * k * k, r = k / 2;
  for (int64_t i = global_thread(); i < B * C * N; i += global_stride()) {
    const int64_t p = i % N, c = (i / N) % C, b = i / (C * N);
    const int64_t y = p / W, x = p % W;
    A sum = 0;
    for (int64_t dy = -r; dy <= r; ++dy) {
      const int64_t py = y - dy;
      if (py < 0 || py >= H) continue;
      for (int64_t ddx = -r; ddx <= r; ++ddx) {
        const int64_t px = x - ddx;
        if (px < 0 || px >= W) continue;
        const int64_t d = (c * k + dy + r) * k + ddx + r;
        sum += to_acc(col[(b * D + d) * N + py * W + px]);
      }
    }
    dx[i] = from_acc<T>(sum);
  }
}

__global__ void usable_keys_kernel(const bool* __restrict__ valid, int64_t B, int64_t H, int64_t W, int64_t k,
                                   uint8_t* __restrict__ usable) {
  const int64_t N = H * W, r = k / 2;
  for (int64_t i = global_thread(); i < B * N; i += global_stride()) {
    const int64_t b = i / N, y = (i % N) / W, x = i % W;
    bool ok = true;
    for (int64_t yy = y - r; yy <= y + r; ++yy)
      for (int64_t xx = x - r; xx <= x + r; ++xx)
        if (yy >= 0 && yy < H && xx >= 0 && xx < W && !valid[b * N + yy * W + xx]) ok = false;
    usable[i] = ok ? 1 : 0;
  }
}

template <typename T>
__global__ void mask_key_rows_kernel(T* __restrict__ scores, const uint8_t* __restrict__ usable, int64_t B,
                                     int64_t N, int fill_neg_inf) {
  using A = acc_t<T>;
  const T fill = from_acc<T>(fill_neg_inf ? -A(INFINITY) : A(0));
  for (int64_t i = global_thread(); i < B * N * N; i += global_stride()) {
    const int64_t row = i / N;  // b * N + key
    if (!usable[row]) scores[i] = fill;
  }
}

}  // namespace
}  // namespace restore_cuda

using namespace restore_cuda;

extern "C" cudaError_t restore_im2col_cuda(int dtype, const void* x, int64_t B, int64_t C, int64_t H, int64_t W,
                                           int64_t ksize, void* col, cudaStream_t stream) {
  const int64_t total = B * C * ksize * ksize * H * W;
  if (total == 0) return cudaSuccess;
  RESTORE_DISPATCH_DTYPE(dtype, im2col_kernel<scalar_t><<<grid_for(total), kThreads, 0, stream>>>(
                                    static_cast<const scalar_t*>(x), B, C, H, W, ksize, static_cast<scalar_t*>(col)));
  return cudaGetLastError();
}

extern "C" cudaError_t restore_normalise_columns_cuda(int dtype, void* col, void* norms, int64_t B, int64_t D,
                                                      int64_t N, cudaStream_t stream) {
  if (B * N == 0) return cudaSuccess;
  RESTORE_DISPATCH_DTYPE(dtype, normalise_columns_kernel<scalar_t><<<grid_for(B * N), kThreads, 0, stream>>>(
                                    static_cast<scalar_t*>(col), static_cast<acc_t<scalar_t>*>(norms), B, D, N));
  return cudaGetLastError();
}

extern "C" cudaError_t restore_normalise_columns_backward_cuda(int dtype, const void* unit, const void* norms,
                                                               void* grad, int64_t B, int64_t D, int64_t N,
                                                               cudaStream_t stream) {
  if (B * N == 0) return cudaSuccess;
  RESTORE_DISPATCH_DTYPE(dtype,
                         normalise_columns_backward_kernel<scalar_t><<<grid_for(B * N), kThreads, 0, stream>>>(
                             static_cast<const scalar_t*>(unit), static_cast<const acc_t<scalar_t>*>(norms),
                             static_cast<scalar_t*>(grad), B, D, N));
  return cudaGetLastError();
}

extern "C" cudaError_t restore_col2im_cuda(int dtype, const void* col, int64_t B, int64_t C, int64_t H, int64_t W,
                                           int64_t ksize, void* dx, cudaStream_t stream) {
  const int64_t total = B * C * H * W;
  if (total == 0) return cudaSuccess;
  RESTORE_DISPATCH_DTYPE(dtype, col2im_kernel<scalar_t><<<grid_for(total), kThreads, 0, stream>>>(
                                    static_cast<const scalar_t*>(col), B, C, H, W, ksize, static_cast<scalar_t*>(dx)));
  return cudaGetLastError();
}

extern "C" cudaError_t restore_usable_keys_cuda(const bool* valid, int64_t B, int64_t H, int64_t W, int64_t ksize,
                                                uint8_t* usable, cudaStream_t stream) {
  if (B * H * W == 0) return cudaSuccess;
  usable_keys_kernel<<<grid_for(B * H * W), kThreads, 0, stream>>>(valid, B, H, W, ksize, usable);
  return cudaGetLastError();
}

extern "C" cudaError_t restore_mask_key_rows_cuda(int dtype, void* scores, const uint8_t* usable, int64_t B,
                                                  int64_t N, int fill_neg_inf, cudaStream_t stream) {
  if (B * N == 0) return cudaSuccess;
  RESTORE_DISPATCH_DTYPE(dtype, mask_key_rows_kernel<scalar_t><<<grid_for(B * N * N), kThreads, 0, stream>>>(
                                    static_cast<scalar_t*>(scores), usable, B, N, fill_neg_inf));
  return cudaGetLastError();
}
