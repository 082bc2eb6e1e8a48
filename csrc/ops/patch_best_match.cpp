// restore::patch_best_match — the fused top-1 of restore::patch_similarity.
//
// index[b, y, x] = argmax over usable keys pk of <unit(key patch pk), unit(query patch (y, x))>
// (ties: smallest pk), score = that maximum; index -1 and score -inf in an image
// without a usable key. The (H*W)^2 volume is never built: per image, the usable key
// columns are gathered to the front and the (keys x queries) score matrix is computed
// in kKeyBlock x kQueryBlock tiles, each one GEMM (at::mm_out, BLAS-threaded) into a
// reused buffer, folded at once into a running max per query (threads over queries).
// The tiles are large because BLAS pays a per-call cost (packing, thread start-up);
// BLAS calls are kept out of parallel regions (nested BLAS threading oversubscribes).
// Memory per image: the two column sets (2 D N values) and one tile.
#include <ATen/Dispatch.h>
#include <ATen/core/Tensor.h>
#include <ATen/ops/empty.h>
#include <ATen/ops/empty_like.h>
#include <ATen/ops/mm.h>
#include <ATen/ops/zeros.h>
#include <torch/library.h>

#include <limits>

#include "common.h"
#include "patch_cpu.h"

namespace restore {
namespace {

// Tile of the blocked search: up to 512 keys x 4096 queries (8 MiB of float32 scores).
constexpr int64_t kQueryBlock = 4096;
constexpr int64_t kKeyBlock = 512;

std::tuple<at::Tensor, at::Tensor> patch_best_match_cpu(const at::Tensor& query, const at::Tensor& keys,
                                                        const at::Tensor& key_valid, int64_t ksize) {
  check_patch_inputs(query, keys, key_valid, ksize);
  check_cpu_float(query, "query");
  const auto q = query.contiguous(), kk = keys.contiguous();
  const auto valid = key_valid.contiguous();
  const int64_t B = q.size(0), C = q.size(1), H = q.size(2), W = q.size(3), N = H * W, D = C * ksize * ksize;
  auto index = at::empty({B, H, W}, q.options().dtype(at::kLong));
  auto score = at::empty({B, H, W}, q.options());
  if (index.numel() == 0) return {index, score};
  auto qcol = at::empty({D, N}, q.options()), kcol = at::empty({D, N}, q.options());
  auto buffer = at::empty({std::min(kKeyBlock, N) * std::min(kQueryBlock, N)}, q.options());
  AT_DISPATCH_FLOATING_TYPES(q.scalar_type(), "patch_best_match_cpu", [&] {
    std::vector<scalar_t> norms;
    std::vector<uint8_t> usable;
    std::vector<int64_t> keys_used;
    std::vector<int32_t> best_slot(N);
    for (int64_t b = 0; b < B; ++b) {
      int64_t* idx_out = index.data_ptr<int64_t>() + b * N;
      scalar_t* score_out = score.data_ptr<scalar_t>() + b * N;
      cpu::usable_keys(valid.data_ptr<bool>() + b * N, H, W, ksize, usable);
      keys_used.clear();
      for (int64_t p = 0; p < N; ++p)
        if (usable[p]) keys_used.push_back(p);
      const int64_t nu = static_cast<int64_t>(keys_used.size());
      std::fill(score_out, score_out + N, -std::numeric_limits<scalar_t>::infinity());
      if (nu == 0) {
        std::fill(idx_out, idx_out + N, int64_t(-1));
        continue;
      }
      cpu::im2col(q.data_ptr<scalar_t>() + b * C * N, C, H, W, ksize, qcol.data_ptr<scalar_t>());
      cpu::normalise_columns(qcol.data_ptr<scalar_t>(), D, N, norms);
      cpu::im2col(kk.data_ptr<scalar_t>() + b * C * N, C, H, W, ksize, kcol.data_ptr<scalar_t>());
      cpu::normalise_columns(kcol.data_ptr<scalar_t>(), D, N, norms);
      // Gather the usable key columns to the front (in place: keys_used is increasing).
      scalar_t* kc = kcol.data_ptr<scalar_t>();
      at::parallel_for(0, D, cpu::grain_for(N), [&](int64_t d0, int64_t d1) {
        for (int64_t d = d0; d < d1; ++d) {
          scalar_t* row = kc + d * N;
          for (int64_t i = 0; i < nu; ++i) row[i] = row[keys_used[i]];
        }
      });
      std::fill(best_slot.begin(), best_slot.end(), int32_t(-1));
      for (int64_t q0 = 0; q0 < N; q0 += kQueryBlock) {
        const int64_t qn = std::min(kQueryBlock, N - q0);
        const auto queries = qcol.narrow(1, q0, qn);
        for (int64_t k0 = 0; k0 < nu; k0 += kKeyBlock) {
          const int64_t kb = std::min(kKeyBlock, nu - k0);
          auto scores = buffer.narrow(0, 0, kb * qn).view({kb, qn});
          at::mm_out(scores, kcol.narrow(1, k0, kb).t(), queries);  // (kb, D) x (D, qn)
          const scalar_t* s = scores.data_ptr<scalar_t>();
          at::parallel_for(0, qn, cpu::grain_for(kb), [&](int64_t p0, int64_t p1) {
            scalar_t* best = score_out + q0;
            int32_t* slot = best_slot.data() + q0;
            for (int64_t j = 0; j < kb; ++j) {
              const scalar_t* row = s + j * qn;
              const int32_t key = static_cast<int32_t>(k0 + j);
              for (int64_t p = p0; p < p1; ++p) {
                const bool better = row[p] > best[p];  // strict: the first maximum wins
                best[p] = better ? row[p] : best[p];
                slot[p] = better ? key : slot[p];
              }
            }
          });
        }
      }
      for (int64_t p = 0; p < N; ++p) idx_out[p] = best_slot[p] >= 0 ? keys_used[best_slot[p]] : int64_t(-1);
    }
  });
  return {index, score};
}

std::tuple<at::Tensor, at::Tensor> patch_best_match_backward_cpu(const at::Tensor& grad_score,
                                                                 const at::Tensor& query, const at::Tensor& keys,
                                                                 const at::Tensor& index, int64_t ksize) {
  check_features(query, "query");
  check_like(keys, "keys", query, "query");
  check_positions(grad_score, "grad_score", query, query.scalar_type());
  check_positions(index, "index", query, at::kLong);
  check_ksize(ksize);
  check_cpu_float(query, "query");
  const auto q = query.contiguous(), kk = keys.contiguous(), g = grad_score.contiguous();
  const auto idx = index.contiguous();
  const int64_t B = q.size(0), C = q.size(1), H = q.size(2), W = q.size(3), N = H * W, D = C * ksize * ksize;
  auto grad_query = at::empty_like(q), grad_keys = at::empty_like(kk);
  if (q.numel() == 0) return {grad_query, grad_keys};
  auto qcol = at::empty({D, N}, q.options()), kcol = at::empty({D, N}, q.options());
  auto dq = at::empty({D, N}, q.options()), dk = at::empty({D, N}, q.options());
  AT_DISPATCH_FLOATING_TYPES(q.scalar_type(), "patch_best_match_backward_cpu", [&] {
    std::vector<scalar_t> qnorm, knorm;
    for (int64_t b = 0; b < B; ++b) {
      const int64_t* ib = idx.data_ptr<int64_t>() + b * N;
      const scalar_t* gb = g.data_ptr<scalar_t>() + b * N;
      for (int64_t p = 0; p < N; ++p)
        TORCH_CHECK_VALUE(ib[p] >= -1 && ib[p] < N, "index must lie in [-1, H*W) = [-1, ", N, "), got ", ib[p]);
      cpu::im2col(q.data_ptr<scalar_t>() + b * C * N, C, H, W, ksize, qcol.data_ptr<scalar_t>());
      cpu::normalise_columns(qcol.data_ptr<scalar_t>(), D, N, qnorm);
      cpu::im2col(kk.data_ptr<scalar_t>() + b * C * N, C, H, W, ksize, kcol.data_ptr<scalar_t>());
      cpu::normalise_columns(kcol.data_ptr<scalar_t>(), D, N, knorm);
      // score[p] = <qcol[:, p], kcol[:, index[p]]>; each thread owns whole rows d.
      const scalar_t* qc = qcol.data_ptr<scalar_t>();
      const scalar_t* kc = kcol.data_ptr<scalar_t>();
      scalar_t* dqp = dq.data_ptr<scalar_t>();
      scalar_t* dkp = dk.data_ptr<scalar_t>();
      at::parallel_for(0, D, cpu::grain_for(N), [&](int64_t d0, int64_t d1) {
        for (int64_t d = d0; d < d1; ++d) {
          const scalar_t* qr = qc + d * N;
          const scalar_t* kr = kc + d * N;
          scalar_t* dqr = dqp + d * N;
          scalar_t* dkr = dkp + d * N;
          std::fill(dkr, dkr + N, scalar_t(0));
          for (int64_t p = 0; p < N; ++p) {
            const int64_t j = ib[p];
            if (j < 0) {
              dqr[p] = scalar_t(0);
              continue;
            }
            dqr[p] = gb[p] * kr[j];
            dkr[j] += gb[p] * qr[p];
          }
        }
      });
      cpu::normalise_columns_backward(qc, qnorm, D, N, dqp);
      cpu::normalise_columns_backward(kc, knorm, D, N, dkp);
      cpu::col2im(dqp, C, H, W, ksize, grad_query.data_ptr<scalar_t>() + b * C * N);
      cpu::col2im(dkp, C, H, W, ksize, grad_keys.data_ptr<scalar_t>() + b * C * N);
    }
  });
  return {grad_query, grad_keys};
}

}  // namespace

TORCH_LIBRARY_FRAGMENT(restore, m) {
  m.def("patch_best_match(Tensor query, Tensor keys, Tensor key_valid, int ksize) -> (Tensor, Tensor)");
  m.def(
      "_patch_best_match_backward(Tensor grad_score, Tensor query, Tensor keys, Tensor index, int ksize) "
      "-> (Tensor, Tensor)");
}

TORCH_LIBRARY_IMPL(restore, CPU, m) {
  m.impl("patch_best_match", &patch_best_match_cpu);
  m.impl("_patch_best_match_backward", &patch_best_match_backward_cpu);
}

}  // namespace restore
