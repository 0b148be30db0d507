// NaN and Inf in checkpoint weights. A checkpoint with them loads and runs, and every output is
// NaN (an empty or garbage completion with exit code 0). The loader scans each tensor as it is
// packed, while its pages are resident anyway, and refuses the model naming the tensor.
#pragma once

#include <cstdint>

#include "base/dtype.h"
#include "kernels/weight_view.h"
#include "model/checkpoint.h"

namespace dsinfer::model {

// The index of the first NaN or Inf among n elements of `dtype` at data, or -1. F8_E4M3 (the
// "fn" variant DeepSeek uses) has no Inf; its NaN is S.1111.111.
int64_t first_non_finite(DType dtype, const void* data, int64_t n);

// Throws Error naming the tensor (and its file) when w or its FP8 scale grid holds NaN or Inf.
void check_finite(const Checkpoint& ckpt, const kernels::WeightView& w);
// The same for a tensor converted to fp32 (norms, router, bias); `what` names it ("FILE: tensor NAME").
void check_finite(const float* data, int64_t n, const std::string& what);

}  // namespace dsinfer::model
