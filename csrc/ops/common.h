// Argument checks shared by the CPU kernels and the CUDA glue.
//
// Shapes and devices raise ValueError in Python (TORCH_CHECK_VALUE), dtypes
// TypeError (TORCH_CHECK_TYPE), as the Python face does.
#pragma once

#include <ATen/core/Tensor.h>
#include <c10/util/Exception.h>

namespace restore {

// Floor on an L2 norm before dividing by it (patches, CSA feature vectors).
constexpr double kNormFloor = 1e-4;

inline void check_features(const at::Tensor& t, const char* name) {
  TORCH_CHECK_VALUE(t.dim() == 4, name, " must be 4-D (B, C, H, W), got shape ", t.sizes());
  TORCH_CHECK_TYPE(t.is_floating_point(), name, " must be a floating tensor, got ", t.scalar_type());
}

inline void check_like(const at::Tensor& t, const char* name, const at::Tensor& ref, const char* ref_name) {
  TORCH_CHECK_VALUE(t.sizes() == ref.sizes(), name, " must have the shape of ", ref_name, " ", ref.sizes(),
                    ", got ", t.sizes());
  TORCH_CHECK_TYPE(t.scalar_type() == ref.scalar_type(), name, " must have the dtype of ", ref_name, " (",
                   ref.scalar_type(), "), got ", t.scalar_type());
  TORCH_CHECK_VALUE(t.device() == ref.device(), name, " must be on the device of ", ref_name, " (", ref.device(),
                    "), got ", t.device());
}

// A (B, H, W) per-position tensor of the given dtype on the device of `features`.
inline void check_positions(const at::Tensor& t, const char* name, const at::Tensor& features,
                            at::ScalarType dtype) {
  const auto b = features.size(0), h = features.size(2), w = features.size(3);
  TORCH_CHECK_VALUE(t.dim() == 3 && t.size(0) == b && t.size(1) == h && t.size(2) == w, name,
                    " must have shape (B, H, W) = (", b, ", ", h, ", ", w, "), got ", t.sizes());
  TORCH_CHECK_TYPE(t.scalar_type() == dtype, name, " must be ", dtype, ", got ", t.scalar_type());
  TORCH_CHECK_VALUE(t.device() == features.device(), name, " must be on the device of the features (",
                    features.device(), "), got ", t.device());
}

inline void check_ksize(int64_t ksize) {
  TORCH_CHECK_VALUE(ksize >= 1 && ksize % 2 == 1, "ksize must be a positive odd integer, got ", ksize);
}

inline void check_patch_inputs(const at::Tensor& query, const at::Tensor& keys, const at::Tensor& key_valid,
                               int64_t ksize) {
  check_features(query, "query");
  check_like(keys, "keys", query, "query");
  check_positions(key_valid, "key_valid", query, at::kBool);
  check_ksize(ksize);
}

inline void check_csa_inputs(const at::Tensor& features, const at::Tensor& hole, const at::Tensor& index,
                             const at::Tensor& score) {
  check_features(features, "features");
  check_positions(hole, "hole", features, at::kBool);
  check_positions(index, "index", features, at::kLong);
  check_positions(score, "score", features, features.scalar_type());
}

inline void check_penalty_inputs(const at::Tensor& grad, const at::Tensor& mask, double eps) {
  check_features(grad, "grad");
  TORCH_CHECK_VALUE(mask.dim() == 4 && mask.size(0) == grad.size(0) && mask.size(1) == 1 &&
                        mask.size(2) == grad.size(2) && mask.size(3) == grad.size(3),
                    "mask must have shape (B, 1, H, W) = (", grad.size(0), ", 1, ", grad.size(2), ", ",
                    grad.size(3), "), got ", mask.sizes());
  TORCH_CHECK_TYPE(mask.scalar_type() == grad.scalar_type(), "mask must have the dtype of grad (",
                   grad.scalar_type(), "), got ", mask.scalar_type());
  TORCH_CHECK_VALUE(mask.device() == grad.device(), "mask must be on the device of grad (", grad.device(),
                    "), got ", mask.device());
  TORCH_CHECK_VALUE(eps >= 0, "eps must be >= 0, got ", eps);
}

inline void check_cpu_float(const at::Tensor& t, const char* name) {
  TORCH_CHECK_VALUE(t.device().is_cpu(), name, " must be a CPU tensor for the CPU kernel, got ", t.device());
  TORCH_CHECK_TYPE(t.scalar_type() == at::kFloat || t.scalar_type() == at::kDouble, name,
                   ": the CPU kernel supports float32 and float64, got ", t.scalar_type());
}

}  // namespace restore
