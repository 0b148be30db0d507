#include "kernels/cpu_features.h"

#include <atomic>
#include <cstdio>
#include <cstdlib>

#include "base/error.h"

namespace dsinfer::kernels {

namespace {

constexpr Isa kAll[] = {Isa::kGeneric, Isa::kAvx2, Isa::kAvx512, Isa::kNeon};

std::atomic<int> g_override{-1};

#if defined(__x86_64__)
// __builtin_cpu_supports reads cpuid (and, for AVX/AVX-512, whether the OS saves their state).
std::string x86_missing(std::initializer_list<std::pair<bool, const char*>> features) {
  std::string missing;
  for (const auto& [has, name] : features)
    if (!has) missing += (missing.empty() ? "" : ", ") + std::string(name);
  return missing;
}
#endif

}  // namespace

const char* isa_name(Isa isa) {
  switch (isa) {
    case Isa::kGeneric: return "generic";
    case Isa::kAvx2: return "avx2";
    case Isa::kAvx512: return "avx512";
    case Isa::kNeon: return "neon";
  }
  return "?";
}

bool parse_isa(const std::string& name, Isa* out) {
  for (Isa isa : kAll)
    if (name == isa_name(isa)) {
      *out = isa;
      return true;
    }
  return false;
}

std::string isa_missing(Isa isa) {
  switch (isa) {
    case Isa::kGeneric: return "";
#if defined(__x86_64__)
    case Isa::kAvx2:
      return x86_missing({{__builtin_cpu_supports("avx2"), "AVX2"},
                          {__builtin_cpu_supports("fma"), "FMA"},
                          {__builtin_cpu_supports("f16c"), "F16C"}});
    case Isa::kAvx512:
      return x86_missing({{__builtin_cpu_supports("avx2"), "AVX2"},
                          {__builtin_cpu_supports("fma"), "FMA"},
                          {__builtin_cpu_supports("f16c"), "F16C"},
                          {__builtin_cpu_supports("avx512f"), "AVX512F"},
                          {__builtin_cpu_supports("avx512bw"), "AVX512BW"},
                          {__builtin_cpu_supports("avx512vl"), "AVX512VL"},
                          {__builtin_cpu_supports("avx512dq"), "AVX512DQ"}});
    case Isa::kNeon: return "an aarch64 CPU";
#elif defined(__aarch64__)
    case Isa::kAvx2:
    case Isa::kAvx512: return "an x86-64 CPU";
    case Isa::kNeon: return "";
#else
    case Isa::kAvx2:
    case Isa::kAvx512: return "an x86-64 CPU";
    case Isa::kNeon: return "an aarch64 CPU";
#endif
  }
  return "a known instruction set";
}

bool isa_supported(Isa isa) {
  static const bool supported[] = {isa_missing(kAll[0]).empty(), isa_missing(kAll[1]).empty(),
                                   isa_missing(kAll[2]).empty(), isa_missing(kAll[3]).empty()};
  return supported[int(isa)];
}

bool cpu_has_avx512_vbmi() {
#if defined(__x86_64__)
  static const bool has = isa_supported(Isa::kAvx512) && __builtin_cpu_supports("avx512vbmi");
  return has;
#else
  return false;
#endif
}

std::vector<Isa> supported_isas() {
  std::vector<Isa> out;
  for (Isa isa : kAll)
    if (isa_supported(isa)) out.push_back(isa);
  return out;
}

Isa best_isa() {
  for (Isa isa : {Isa::kAvx512, Isa::kAvx2, Isa::kNeon})
    if (isa_supported(isa)) return isa;
  return Isa::kGeneric;
}

Isa isa_from_environment() {
  const char* env = std::getenv("DSINFER_ISA");
  if (!env || !*env) return best_isa();
  Isa isa;
  check(parse_isa(env, &isa), "DSINFER_ISA=", env, " is not a kernel path: use generic, avx2, avx512 or neon");
  check(isa_supported(isa), "DSINFER_ISA=", env, " asks for a path this CPU cannot run (missing: ", isa_missing(isa),
        "); the best path here is ", isa_name(best_isa()));
  return isa;
}

Isa active_isa() {
  const int o = g_override.load(std::memory_order_relaxed);
  if (o >= 0) return Isa(o);
  static const Isa chosen = [] {
    try {
      return isa_from_environment();
    } catch (const Error& e) {
      std::fprintf(stderr, "error: %s\n", e.what());
      std::exit(2);
    }
  }();
  return chosen;
}

void set_isa_override(Isa isa) { g_override.store(int(isa)); }
void reset_isa_override() { g_override.store(-1); }

}  // namespace dsinfer::kernels
