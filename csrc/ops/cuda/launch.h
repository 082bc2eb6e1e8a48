// Launchers of the CUDA kernels (csrc/ops/cuda/*.cu), shared by the .cu files and
// the glue (*_glue.cpp). Torch-free on purpose: the .cu files compile with plain
// nvcc, so the test suite can compile-check them without a CUDA build of torch.
//
// Conventions: every pointer is device memory of the dtype given by `dtype`
// (a RestoreDtype) unless its type says otherwise; "acc" buffers are float for
// float16/bfloat16/float32 and double for float64. Tensors are contiguous. Each
// launcher enqueues exactly one kernel on `stream` and returns cudaGetLastError()
// (cudaSuccess for an empty launch, cudaErrorInvalidValue for an unknown dtype).
#pragma once

#include <cuda_runtime_api.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

enum RestoreDtype { kRestoreFloat32 = 0, kRestoreFloat64 = 1, kRestoreFloat16 = 2, kRestoreBFloat16 = 3 };

// ---- patch columns (patch_similarity.cu) -----------------------------------
// col (B, D = C*k*k, N = H*W) from x (B, C, H, W): zero-padded k×k patches, unfold's layout.
cudaError_t restore_im2col_cuda(int dtype, const void* x, int64_t B, int64_t C, int64_t H, int64_t W,
                                int64_t ksize, void* col, cudaStream_t stream);
// In place, per column of col (B, D, N): norms[b, p] = ||col[b, :, p]|| (acc); col /= max(norm, 1e-4).
cudaError_t restore_normalise_columns_cuda(int dtype, void* col, void* norms, int64_t B, int64_t D, int64_t N,
                                           cudaStream_t stream);
// In place, per column: g <- (g - u (u.g)) / n when n >= 1e-4, g / 1e-4 otherwise (u: normalised columns).
cudaError_t restore_normalise_columns_backward_cuda(int dtype, const void* unit, const void* norms, void* grad,
                                                   int64_t B, int64_t D, int64_t N, cudaStream_t stream);
// dx (B, C, H, W) = the adjoint of im2col applied to col (B, D, N) (a gather, no atomics).
cudaError_t restore_col2im_cuda(int dtype, const void* col, int64_t B, int64_t C, int64_t H, int64_t W,
                                int64_t ksize, void* dx, cudaStream_t stream);
// usable (B, N) uint8: every in-image position of the k×k window is valid (valid: (B, N) bool).
cudaError_t restore_usable_keys_cuda(const bool* valid, int64_t B, int64_t H, int64_t W, int64_t ksize,
                                     uint8_t* usable, cudaStream_t stream);
// scores (B, N, N): rows of unusable keys set to -inf (fill != 0) or to 0 (fill == 0).
cudaError_t restore_mask_key_rows_cuda(int dtype, void* scores, const uint8_t* usable, int64_t B, int64_t N,
                                       int fill_neg_inf, cudaStream_t stream);

// ---- fused top-1 (patch_best_match.cu) -------------------------------------
// scores (B, kb, N) hold keys k0 .. k0+kb-1 against all N queries; best_score (B, N) acc and
// best_index (B, N) int64 are updated in place (strict >, keys in increasing order).
cudaError_t restore_best_match_update_cuda(int dtype, const void* scores, const uint8_t* usable, int64_t B,
                                           int64_t N, int64_t k0, int64_t kb, void* best_score,
                                           int64_t* best_index, cudaStream_t stream);
// score (B, N) of dtype from best_score (B, N) acc.
cudaError_t restore_best_match_finish_cuda(int dtype, const void* best_score, int64_t B, int64_t N, void* score,
                                           cudaStream_t stream);
// Backward of score[b, p] = <qunit[b, :, p], kunit[b, :, index[b, p]]>: dq (B, D, N) of dtype and
// dk_acc (B, D, N) acc (zeroed by the caller; atomics).
cudaError_t restore_best_match_backward_cuda(int dtype, const void* grad_score, const int64_t* index,
                                             const void* qunit, const void* kunit, int64_t B, int64_t D, int64_t N,
                                             void* dq, void* dk_acc, cudaStream_t stream);

// ---- CSA propagation (csa_propagate.cu) ------------------------------------
// out (B, C, H*W) holds a copy of features; the hole positions are overwritten. One block per image.
cudaError_t restore_csa_propagate_cuda(int dtype, const void* features, const bool* hole, const int64_t* index,
                                       const void* score, int64_t B, int64_t C, int64_t N, void* out,
                                       cudaStream_t stream);
// grad_features (B, C, N) holds grad at known positions and 0 at holes; the reverse scan adds the
// matched positions' share. weights (B, N) acc and carry (B, C) acc are scratch (carry zeroed).
cudaError_t restore_csa_propagate_backward_cuda(int dtype, const void* grad, const void* features,
                                                const bool* hole, const int64_t* index, const void* score,
                                                const void* output, int64_t B, int64_t C, int64_t N,
                                                void* weights, void* carry, void* grad_features,
                                                cudaStream_t stream);
// grad_features (B, C, N) = grad * !hole.
cudaError_t restore_csa_known_grad_cuda(int dtype, const void* grad, const bool* hole, int64_t B, int64_t C,
                                        int64_t N, void* grad_features, cudaStream_t stream);

// ---- masked gradient penalty (masked_gradient_penalty.cu) ------------------
// Number of chunks per sample used by restore_penalty_partial_sums_cuda (partials: (B, chunks) acc).
int64_t restore_penalty_chunks(int64_t C, int64_t N);
// partials[b, j] = sum of g^2 m over chunk j of sample b (g: (B, C, N), m: (B, N)).
cudaError_t restore_penalty_partial_sums_cuda(int dtype, const void* grad, const void* mask, int64_t B, int64_t C,
                                              int64_t N, int64_t chunks, void* partials, cudaStream_t stream);
// slope[b] = sqrt(sum_j partials[b, j] + eps) (acc); penalty (0-d, dtype) = mean_b (slope - 1)^2.
// With grad_out != NULL (0-d, dtype) factor[b] = grad_out * 2/B * (1 - 1/slope[b]) replaces the penalty.
cudaError_t restore_penalty_finish_cuda(int dtype, const void* partials, int64_t B, int64_t chunks, double eps,
                                        const void* grad_out, void* penalty, void* factor, cudaStream_t stream);
// result (B, C, N) = factor[b] * g * m.
cudaError_t restore_penalty_backward_cuda(int dtype, const void* grad, const void* mask, const void* factor,
                                          int64_t B, int64_t C, int64_t N, void* result, cudaStream_t stream);

#ifdef __cplusplus
}
#endif
