// Prints this machine's streaming-read bandwidth and FMA peaks (the denominators of every other
// benchmark). `--json` for scripts; `--smoke` for a quick CI run.
#include <cstdio>
#include <cstring>

#include "machine_limits.h"

int main(int argc, char** argv) {
  using namespace dsinfer::bench;
  bool smoke = smoke_mode(argc, argv);
  bool json = false;
  for (int i = 1; i < argc; ++i) json |= !std::strcmp(argv[i], "--json");
  MachineLimits m = measure_machine_limits(smoke ? (size_t(64) << 20) : (size_t(1) << 30), smoke ? 3 : 7);
  if (json)
    std::printf("{\"threads\": %d, \"isa\": \"%s\", \"stream_read_gbps\": %.3f, \"fma_fp32_gflops\": %.3f, "
                "\"bf16_dot_gflops\": %.3f}\n",
                m.threads, m.isa.c_str(), m.stream_read_gbps, m.fma_fp32_gflops, m.bf16_dot_gflops);
  else
    std::printf("%s\n", describe(m).c_str());
  return 0;
}
