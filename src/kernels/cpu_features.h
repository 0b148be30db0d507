// Which vector instruction set the kernels run with, chosen once at run time from what the CPU
// reports (cpuid), not only from what the compiler was told: AVX-512 (F, BW, VBMI for the
// FP8 byte-table decode) when present, else AVX2 + FMA. Both paths reduce every output element
// in the same order with the same FMAs, so they give bit-identical results; tests force each in
// turn with set_isa_override.
#pragma once

namespace dsinfer::kernels {

enum class Isa { kAvx2, kAvx512 };

// The best ISA this CPU supports (cached), unless overridden.
Isa active_isa();
const char* isa_name(Isa isa);
bool cpu_has_avx512();  // F + BW + VL + VBMI

// For tests and benchmarks: force an ISA (it must be supported); nullptr-like reset with reset_isa_override().
void set_isa_override(Isa isa);
void reset_isa_override();

}  // namespace dsinfer::kernels
