#include "kernels/cpu_features.h"

#include <atomic>

namespace dsinfer::kernels {

namespace {
std::atomic<int> g_override{-1};
}

bool cpu_has_avx512() {
  static const bool has = __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
                          __builtin_cpu_supports("avx512vl") && __builtin_cpu_supports("avx512vbmi");
  return has;
}

Isa active_isa() {
  int o = g_override.load(std::memory_order_relaxed);
  if (o >= 0) return Isa(o);
#if defined(__AVX512F__) || defined(DSINFER_HAVE_AVX512_KERNELS)
  return cpu_has_avx512() ? Isa::kAvx512 : Isa::kAvx2;
#else
  return Isa::kAvx2;
#endif
}

const char* isa_name(Isa isa) { return isa == Isa::kAvx512 ? "avx512" : "avx2"; }

void set_isa_override(Isa isa) { g_override.store(int(isa)); }
void reset_isa_override() { g_override.store(-1); }

}  // namespace dsinfer::kernels
