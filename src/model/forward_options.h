// Choices that change how (not what) the model computes.
#pragma once

#include "base/dtype.h"
#include "kernels/gemm.h"

namespace dsinfer::model {

// kFp32: activations and the latent cache in fp32 over exactly dequantised weights — the
// verification precision, matched against the PyTorch reference to 1e-4.
// kDefault: the serving precision: activations enter every GEMM rounded to bf16 (FP8 and BF16
// weights alike) and the latent cache is bf16 as FlashMLA keeps it. FP8 activations (1x128
// per-token scales into gemm_fp8_nt, as DeepSeek serves on GPUs) are available per call
// (kernels::ActQuant::kFp8) but not the default: on the CPU the GEMM runs fp32 FMAs on exactly
// decoded operands, so e4m3 activations buy no speed, and they cost ~13% relative L2 on the
// tiny-v3 FP8 logits (measured) against 3e-2 allowed. Both precisions use the same kernels and
// the same reduction order, so both are batch invariant.
enum class Precision { kFp32, kDefault };

// MLA's two forms. kAuto: absorbed for single-token decode steps, non-absorbed for prefill
// chunks. The forced modes exist so tests can show both give the same logits.
enum class AttentionMode { kAuto, kAbsorbed, kNonAbsorbed };

// How GEMMs present fp32 activations at this precision (kernels::activation_format pairs the
// choice with each weight's dtype).
inline kernels::ActQuant activation_quant(Precision p) {
  return p == Precision::kFp32 ? kernels::ActQuant::kF32 : kernels::ActQuant::kBf16;
}

// The format tokens take into the routed experts — and so over the wire in an expert-parallel
// dispatch. kBf16 follows the precision (bf16 at serving precision, fp32 at kFp32); kFp8 is
// DeepEP's FP8 dispatch: 1x128 per-token scales, used only against FP8 expert weights (BF16
// weights get bf16, as kernels::activation_format pairs them).
enum class ExpertActivations { kBf16, kFp8 };

inline kernels::ActQuant expert_activation_quant(Precision p, ExpertActivations a, DType weights) {
  if (p == Precision::kFp32) return kernels::ActQuant::kF32;
  return kernels::activation_format(a == ExpertActivations::kFp8 ? kernels::ActQuant::kFp8 : kernels::ActQuant::kBf16,
                                    weights);
}

}  // namespace dsinfer::model
