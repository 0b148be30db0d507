// Choices that change how (not what) the model computes.
#pragma once

namespace dsinfer::model {

// kFp32: activations and the latent cache in fp32 over exactly dequantised weights — the
// verification precision, matched against the PyTorch reference to 1e-4.
// kDefault: the serving precision; the latent cache is bf16 as FlashMLA keeps it.
enum class Precision { kFp32, kDefault };

// MLA's two forms. kAuto: absorbed for single-token decode steps, non-absorbed for prefill
// chunks. The forced modes exist so tests can show both give the same logits.
enum class AttentionMode { kAuto, kAbsorbed, kNonAbsorbed };

}  // namespace dsinfer::model
