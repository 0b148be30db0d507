// `dsinfer disk-tier-bench`: the disk tier's read path alone (cache/disk_tier.h), without a model:
// a prompt's worth of block files of a chosen cache shape is written through the tier, then looked
// up again and again — every lookup opens, reads, verifies and (as the engine does) copies the
// rows into the pool — with the page cache warm, dropped before each lookup (root only), and
// with O_DIRECT, each with io_uring and with pread. GB/s counts the block files' bytes over the
// lookup's wall time; scripts/disk_kv_bench.py sets it beside dd's sequential read.
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <thread>
#include <vector>

#include <nlohmann/json.hpp>

#include "base/error.h"
#include "base/timer.h"
#include "cache/disk_tier.h"
#include "cache/kv_pool.h"
#include "command.h"
#include "percentile.h"

namespace dsinfer::app {
namespace {

bool drop_page_cache() {
  ::sync();
  std::ofstream f("/proc/sys/vm/drop_caches");
  f << "3\n";
  f.flush();
  return bool(f);
}

template <typename Pred>
void wait_for(Pred done) {
  const double end = now_seconds() + 120;
  while (!done()) {
    check(now_seconds() < end, "the disk tier did not answer within 120 s");
    std::this_thread::sleep_for(std::chrono::microseconds(200));
  }
}

int run(Args& args) {
  const std::string dir = args.get_or("dir", "/tmp/dsinfer-disk-tier-bench");
  const int64_t blocks = args.get_int("blocks", 64, 1, 4096);
  const int64_t layers = args.get_int("layers", 12, 1, 512);
  const int64_t rounds = args.get_int("rounds", 5, 1, 1000);
  const bool fp8 = args.flag("fp8");
  const bool json = args.flag("json");
  args.finish();
  // bench-v3-small's cache by default: 12 layers of 512 latent + 64 rope channels.
  kernels::KvCacheSpec spec{layers, 576, 64, fp8 ? DType::kF8E4M3 : DType::kBF16};
  cache::KvPool pool(spec, blocks);
  std::vector<int32_t> tokens(size_t(blocks * spec.block_size));
  for (size_t i = 0; i < tokens.size(); ++i) tokens[i] = int32_t(1000 + i % 90000);
  std::vector<uint64_t> keys;
  for (int64_t b = 0; b < blocks; ++b) keys.push_back(0x1000 + uint64_t(b));
  std::filesystem::remove_all(dir);
  constexpr uint64_t kFingerprint = 0xd15c7e57;
  cache::DiskTierOptions o;
  o.dir = dir;
  o.capacity_bytes = 1e12;
  {
    cache::DiskTier writer(o, kFingerprint, pool.view(), nullptr);
    for (int64_t b = 0; b < blocks; ++b)  // at most 64 writes wait at once: queue as they drain
      wait_for([&] { return writer.store(keys[size_t(b)], tokens.data() + b * spec.block_size, int32_t(b)); });
    std::vector<int32_t> stored;
    wait_for([&] {
      writer.take_stored(stored);
      return int64_t(stored.size()) == blocks;
    });
  }
  const double file_bytes = double(blocks) * double(cache::disk_block_bytes(cache::DiskBlockId::of(1, kFingerprint, spec)));
  nlohmann::json out = {{"blocks", blocks}, {"layers", layers}, {"block_file_mb", file_bytes / double(blocks) / 1e6},
                        {"lookup_mb", file_bytes / 1e6}, {"rounds", rounds}};
  bool can_drop = drop_page_cache();
  for (const char* cache_state : {"warm", "dropped", "o_direct"}) {
    if (std::string(cache_state) == "dropped" && !can_drop) continue;
    for (cache::BlockIoBackend backend : {cache::BlockIoBackend::kUring, cache::BlockIoBackend::kPread}) {
      cache::DiskTierOptions r = o;
      r.backend = backend;
      r.direct_io = std::string(cache_state) == "o_direct";
      cache::DiskTier tier(r, kFingerprint, pool.view(), nullptr);
      std::vector<double> gbps;
      for (int64_t round = 0; round <= rounds; ++round) {  // round 0 faults the buffers in: not counted
        if (std::string(cache_state) == "dropped") drop_page_cache();
        const double t0 = now_seconds();
        tier.lookup(keys, tokens);
        std::vector<cache::DiskLoad> loads;
        wait_for([&] {
          tier.take_loads(loads);
          return !loads.empty();
        });
        check(int64_t(loads[0].keys.size()) == blocks, "the lookup found ", loads[0].keys.size(), " of ", blocks, " blocks");
        for (size_t i = 0; i < loads[0].keys.size(); ++i) tier.copy_rows(loads[0], i, int32_t(i));
        const double dt = now_seconds() - t0;
        tier.recycle(loads[0]);
        if (round > 0) gbps.push_back(file_bytes / dt / 1e9);
      }
      const std::string name = std::string(cache_state) + (backend == cache::BlockIoBackend::kUring ? "_io_uring" : "_pread");
      out[name + "_gbps"] = percentile(gbps, 50);
      if (!json)
        std::printf("%-20s %6.2f GB/s (median of %lld lookups of %.1f MB)\n", name.c_str(), percentile(gbps, 50), (long long)rounds,
                    file_bytes / 1e6);
    }
  }
  if (!can_drop && !json) std::printf("(not root: no dropped-page-cache rows)\n");
  if (json) std::printf("%s\n", out.dump().c_str());
  std::filesystem::remove_all(dir);
  return 0;
}

const Registration reg({"disk-tier-bench",
                        "the KV disk tier's read path alone: lookups of a prompt's block files, GB/s",
                        "[--dir /tmp/dsinfer-disk-tier-bench] [--blocks 64] [--layers 12] [--fp8] [--rounds 5] [--json]\n\n"
                        "Writes --blocks block files of a cache with --layers layers (bench-v3-small's by default: a\n"
                        "4,096-token prompt) through the disk tier into --dir, then times whole lookups (open, read,\n"
                        "verify, copy into the pool) with the page cache warm, dropped before each lookup (needs\n"
                        "root) and with O_DIRECT, each with io_uring and with pread. Removes --dir at the end.",
                        run});

}  // namespace
}  // namespace dsinfer::app
