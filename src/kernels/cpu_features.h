// Which kernel path runs, chosen at run time from what the CPU reports (cpuid on x86-64), never
// from the compile-time macros of the build machine. Every ISA-specific kernel lives in its own
// function compiled with its own target attributes (or in a file compiled only for its
// architecture), so one portable binary carries every x86-64 path and picks the best at start.
//
//   generic  plain C++, every CPU; the reference the others are tested against.
//   avx2     x86-64 with AVX2 + FMA + F16C (Haswell, Zen 1-3 and later).
//   avx512   x86-64 with AVX-512 F + BW + VL + DQ (Skylake-SP and later, Zen 4+). The FP8 GEMM's
//            byte-table decode also needs VBMI; without it FP8 panels take the avx2 panel.
//   neon     aarch64 (Advanced SIMD is part of ARMv8-A): GEMM/GEMV panels; the rest is generic.
//
// DSINFER_ISA=generic|avx2|avx512|neon forces a path the CPU supports (a path it lacks is refused
// with an error naming what is missing). What may differ between paths (docs/kernels.md, "What
// is bit-identical across paths"): GEMM/GEMV, every conversion, dot (rmsnorm), SiLU and the
// sampling weights and their sum are the same bits on every path (one reduction order, one
// exp: exp_poly.h, lane_fold.h). Attention (mla_decode, mla_prefill) reduces its dot products and
// softmax sums in each vector width's order: every path stays within 2e-5 of the float64
// reference in the tests, but its results are not guaranteed identical across paths.
#pragma once

#include <string>
#include <vector>

namespace dsinfer::kernels {

enum class Isa { kGeneric, kAvx2, kAvx512, kNeon };

const char* isa_name(Isa isa);
bool parse_isa(const std::string& name, Isa* out);

// Whether this CPU can run the path (for avx512: F + BW + VL + DQ).
bool isa_supported(Isa isa);
// Empty when supported, else what is missing ("AVX2, FMA" or "an x86-64 CPU").
std::string isa_missing(Isa isa);
// AVX-512 VBMI, used by the FP8 GEMM panel's byte-table decode.
bool cpu_has_avx512_vbmi();

// Every path this CPU supports, lowest first (what a test runs each kernel under).
std::vector<Isa> supported_isas();
// The best path this CPU supports.
Isa best_isa();

// DSINFER_ISA when set, else best_isa(). Throws dsinfer::Error naming the problem for an unknown
// name or a path this CPU lacks. Programs call it once at start so the error reaches the user.
Isa isa_from_environment();

// The path kernels use now: a test override, else isa_from_environment() (cached; an invalid
// DSINFER_ISA reached first here prints the error and exits with status 2).
Isa active_isa();

// For tests and benchmarks: force a path (it must be supported); reset_isa_override() undoes it.
void set_isa_override(Isa isa);
void reset_isa_override();

}  // namespace dsinfer::kernels
