// Choices that change how (not what) the model computes.
#pragma once

#include "base/dtype.h"
#include "kernels/gemm.h"

namespace dsinfer::model {

// kFp32: activations and the latent cache in fp32 over exactly dequantised weights — the
// verification precision, matched against the PyTorch reference to 1e-4.
// kDefault: the serving precision, as DeepSeek serves: FP8 checkpoints get FP8 activations
// (1x128 per-token scales) into gemm_fp8_nt, BF16 checkpoints bf16 activations, and the latent
// cache is bf16 as FlashMLA keeps it. Both use the same kernels and the same reduction order,
// so both are batch invariant.
enum class Precision { kFp32, kDefault };

// MLA's two forms. kAuto: absorbed for single-token decode steps, non-absorbed for prefill
// chunks. The forced modes exist so tests can show both give the same logits.
enum class AttentionMode { kAuto, kAbsorbed, kNonAbsorbed };

// How a GEMM presents fp32 activations to weights of dtype `weights` at this precision.
inline kernels::ActQuant activation_quant(Precision p, DType weights) {
  if (p == Precision::kFp32) return kernels::ActQuant::kF32;
  return weights == DType::kF8E4M3 ? kernels::ActQuant::kFp8 : kernels::ActQuant::kBf16;
}

}  // namespace dsinfer::model
