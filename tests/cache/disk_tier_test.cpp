// The disk tier on its own: write-through, lookups in chain order, verification (a bad file is a
// miss and is removed), sharing between tiers on one directory, the index rebuilt after a
// restart, the collector (also another instance's, removing files a lookup is reading), lookups
// that do not wait for each other, and a directory that cannot be written. Every test runs with io_uring
// and with pread.
#include "cache/disk_tier.h"

#include <gtest/gtest.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <filesystem>
#include <fstream>
#include <functional>
#include <mutex>
#include <thread>

#include "base/timer.h"
#include "cache/disk_block_directory.h"
#include "test_pool.h"

namespace dsinfer::cache {
namespace {

namespace fs = std::filesystem;
constexpr uint64_t kFingerprint = 0x5eedf00d;

bool eventually(const std::function<bool()>& f, double timeout_s = 10) {
  const double end = now_seconds() + timeout_s;
  while (now_seconds() < end) {
    if (f()) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(2));
  }
  return f();
}

struct Dir {
  std::string path;
  explicit Dir(const std::string& name) {
    path = (fs::temp_directory_path() / ("dsinfer-disk-tier-" + name + "-" + std::to_string(::getpid()))).string();
    fs::remove_all(path);
  }
  ~Dir() { fs::remove_all(path); }
};

// Where the tier on `dir` keeps block `key` of `pool`'s format.
std::string block_file(const Dir& dir, const Pool& pool, uint64_t key) {
  return dir.path + "/" + disk_block_path(DiskBlockId::of(key, kFingerprint, pool.spec));
}

class DiskTierTest : public ::testing::TestWithParam<BlockIoBackend> {
 protected:
  DiskTierOptions options(const std::string& dir) const {
    DiskTierOptions o;
    o.dir = dir;
    o.capacity_bytes = 1e9;
    o.backend = GetParam();
    return o;
  }
};

// Stores blocks 0..n-1 of the tier's pool under keys key0, key0+1, ... and waits until they are written.
void store_all(DiskTier& tier, uint64_t key0, int n) {
  for (int b = 0; b < n; ++b) ASSERT_TRUE(tier.store(key0 + uint64_t(b), tokens_of(b).data(), b));
  std::vector<int32_t> stored;
  ASSERT_TRUE(eventually([&] {
    tier.take_stored(stored);
    return stored.size() == size_t(n);
  }));
}

// One lookup of `keys` (block_size tokens each in `tokens`), waited for.
DiskLoad look_up(DiskTier& tier, const std::vector<uint64_t>& keys, const std::vector<int32_t>& tokens) {
  const uint64_t ticket = tier.lookup(keys, tokens);
  std::vector<DiskLoad> loads;
  EXPECT_TRUE(eventually([&] {
    tier.take_loads(loads);
    return !loads.empty();
  }));
  EXPECT_EQ(loads.size(), 1u);
  if (loads.empty()) return {};
  EXPECT_EQ(loads[0].ticket, ticket);
  return std::move(loads[0]);
}

// Blocks key0, key0+1, ... holding tokens_of(0), tokens_of(1), ...
DiskLoad look_up(DiskTier& tier, uint64_t key0, int n) {
  std::vector<uint64_t> keys;
  std::vector<int32_t> tokens;
  for (int b = 0; b < n; ++b) {
    keys.push_back(key0 + uint64_t(b));
    const auto t = tokens_of(b);
    tokens.insert(tokens.end(), t.begin(), t.end());
  }
  return look_up(tier, keys, tokens);
}

// Holds the first lookup that reaches `stage` (DiskTierOptions::lookup_hook) until released;
// every other lookup passes.
struct LookupGate {
  DiskLookupStage stage;
  std::atomic<bool> armed{true};
  std::mutex mu;
  std::condition_variable cv;
  bool arrived = false, released = false;
  explicit LookupGate(DiskLookupStage s) : stage(s) {}
  void pass(DiskLookupStage s) {
    if (s != stage || !armed.exchange(false)) return;
    std::unique_lock lock(mu);
    arrived = true;
    cv.notify_all();
    cv.wait(lock, [&] { return released; });
  }
  bool wait_arrived() {
    std::unique_lock lock(mu);
    return cv.wait_for(lock, std::chrono::seconds(10), [&] { return arrived; });
  }
  void release() {
    std::lock_guard lock(mu);
    released = true;
    cv.notify_all();
  }
};

// The loads of `tier` until one with `ticket` came (kept in `loads`, the others too).
bool wait_for_load(DiskTier& tier, uint64_t ticket, std::vector<DiskLoad>& loads) {
  return eventually([&] {
    tier.take_loads(loads);
    for (const DiskLoad& l : loads)
      if (l.ticket == ticket) return true;
    return false;
  });
}

const DiskLoad* load_of(const std::vector<DiskLoad>& loads, uint64_t ticket) {
  for (const DiskLoad& l : loads)
    if (l.ticket == ticket) return &l;
  return nullptr;
}

// Keys key0.. and their tokens, as look_up takes them.
std::pair<std::vector<uint64_t>, std::vector<int32_t>> chain(uint64_t key0, int n) {
  std::pair<std::vector<uint64_t>, std::vector<int32_t>> c;
  for (int b = 0; b < n; ++b) {
    c.first.push_back(key0 + uint64_t(b));
    const auto t = tokens_of(b);
    c.second.insert(c.second.end(), t.begin(), t.end());
  }
  return c;
}

TEST_P(DiskTierTest, WrittenBlocksAreFoundVerifiedAndLoadedByAnotherTierOnTheDirectory) {
  Dir dir("share");
  Pool src(DType::kBF16, 9), dst(DType::kBF16, 0);
  std::atomic<int> woken{0};
  DiskTier writer(options(dir.path), kFingerprint, src.view, nullptr);
  store_all(writer, 100, 3);
  EXPECT_EQ(writer.metrics().written_blocks, 3u);
  EXPECT_FALSE(writer.store(100, tokens_of(0).data(), 0)) << "a block known on disk is not written twice";

  // Another instance on the same directory (another process in production) finds them.
  DiskTier reader(options(dir.path), kFingerprint, dst.view, [&] { ++woken; });
  const DiskLoad load = look_up(reader, 100, 3);
  ASSERT_EQ(load.keys.size(), 3u);
  EXPECT_GE(woken.load(), 1);
  for (int b = 0; b < 3; ++b) reader.copy_rows(load, size_t(b), 3 - b);
  for (int b = 0; b < 3; ++b) EXPECT_EQ(dst.block(3 - b), src.block(b)) << "block " << b;
  const DiskTierMetrics m = reader.metrics();
  EXPECT_EQ(m.lookups, 1u);
  EXPECT_EQ(m.hit_blocks, 3u);
  EXPECT_EQ(m.read_bytes, 3 * disk_block_bytes(DiskBlockId::of(1, kFingerprint, src.spec)));
  EXPECT_GT(m.read_seconds, 0);
}

TEST_P(DiskTierTest, ALookupStopsAtTheFirstMissingBlockOfTheChain) {
  Dir dir("chain");
  Pool src(DType::kBF16, 5);
  DiskTier tier(options(dir.path), kFingerprint, src.view, nullptr);
  store_all(tier, 200, 3);
  fs::remove(block_file(dir, src, 201));
  const DiskLoad load = look_up(tier, 200, 3);
  ASSERT_EQ(load.keys.size(), 1u) << "block 2 is useless without block 1";
  EXPECT_EQ(load.keys[0], 200u);
  EXPECT_EQ(look_up(tier, 300, 2).keys.size(), 0u);
  EXPECT_EQ(tier.metrics().lookup_blocks, 5u);
  EXPECT_EQ(tier.metrics().hit_blocks, 1u);
}

TEST_P(DiskTierTest, CorruptTruncatedAndForeignFilesAreMissesAndRemovedACollisionIsKept) {
  Dir dir("bad");
  Pool src(DType::kBF16, 3);
  DiskTier tier(options(dir.path), kFingerprint, src.view, nullptr);
  store_all(tier, 400, 4);
  auto path = [&](uint64_t key) { return block_file(dir, src, key); };
  {  // a flipped byte in the rows
    std::fstream f(path(400), std::ios::in | std::ios::out | std::ios::binary);
    f.seekp(-100, std::ios::end);
    f.put('\x5a');
  }
  EXPECT_EQ(look_up(tier, 400, 1).keys.size(), 0u);
  EXPECT_FALSE(fs::exists(path(400))) << "a corrupt file is removed so the block is written again";
  fs::resize_file(path(401), fs::file_size(path(401)) - 1);  // truncated
  EXPECT_EQ(look_up(tier, 401, 1).keys.size(), 0u);
  EXPECT_FALSE(fs::exists(path(401)));
  fs::copy_file(path(403), path(402), fs::copy_options::overwrite_existing);  // another key's file
  // The foreign file's own tokens: only the key differs.
  EXPECT_EQ(look_up(tier, {402}, tokens_of(3)).keys.size(), 0u);
  EXPECT_FALSE(fs::exists(path(402)));
  EXPECT_EQ(tier.metrics().bad_blocks, 3u);
  // The right key, other tokens: a 64-bit key collision. The file is sound (another prompt's).
  EXPECT_EQ(look_up(tier, {403}, tokens_of(7)).keys.size(), 0u);
  EXPECT_TRUE(fs::exists(path(403)));
  EXPECT_EQ(tier.metrics().collisions, 1u);
}

TEST_P(DiskTierTest, ARestartRebuildsTheIndexFromTheDirectory) {
  Dir dir("restart");
  Pool src(DType::kF8E4M3, 11);
  {
    DiskTier tier(options(dir.path), kFingerprint, src.view, nullptr);
    store_all(tier, 500, 4);
  }
  // A writer that died between write and rename leaves a temporary file; old ones are removed.
  const std::string tmp = block_file(dir, src, 999) + ".tmp.1.2";
  std::ofstream(tmp) << "partial";
  DiskTierOptions o = options(dir.path);
  o.stale_temp_s = -1;  // every temporary file counts as stale here
  DiskTier again(o, kFingerprint, src.view, nullptr);
  EXPECT_EQ(again.metrics().files, 4);
  EXPECT_EQ(again.metrics().bytes, int64_t(4 * disk_block_bytes(DiskBlockId::of(1, kFingerprint, src.spec))));
  EXPECT_FALSE(again.store(502, tokens_of(2).data(), 2)) << "the rebuilt index knows block 502 is on disk";
  EXPECT_FALSE(fs::exists(tmp));
  EXPECT_EQ(look_up(again, 500, 4).keys.size(), 4u);
  // Another model's tier on the same directory sees its files but uses none of them.
  DiskTier other(options(dir.path), kFingerprint + 1, src.view, nullptr);
  EXPECT_EQ(other.metrics().files, 4);
  EXPECT_EQ(look_up(other, 500, 1).keys.size(), 0u);
}

TEST_P(DiskTierTest, TheCollectorRemovesTheLeastRecentlyUsedPastTheCapacityAndExpiredFiles) {
  Dir dir("gc");
  Pool src(DType::kBF16, 13, 8);
  const int64_t file = int64_t(disk_block_bytes(DiskBlockId::of(1, kFingerprint, src.spec)));
  DiskTierOptions o = options(dir.path);
  o.capacity_bytes = double(6 * file);  // room for six blocks
  o.gc_interval_s = 3600;               // only when the writes pass the capacity, or asked
  DiskTier tier(o, kFingerprint, src.view, nullptr);
  auto path = [&](uint64_t key) { return block_file(dir, src, key); };
  store_all(tier, 600, 6);
  // Age them: block k last used k hours ago, then block 605 (the oldest) is used by a lookup.
  for (int k = 0; k < 6; ++k) {
    const double t = now_seconds_since_epoch() - 3600.0 * (k + 1);
    timespec ts[2];
    ts[0].tv_sec = ts[1].tv_sec = time_t(t);
    ts[0].tv_nsec = ts[1].tv_nsec = 0;
    ASSERT_EQ(::utimensat(AT_FDCWD, path(600 + uint64_t(k)).c_str(), ts, 0), 0);
  }
  ASSERT_EQ(look_up(tier, {605}, tokens_of(5)).keys.size(), 1u);
  // A seventh block passes the capacity: the collector runs by itself and goes down to 90%
  // (5.4 blocks: two go, the least recently used).
  ASSERT_TRUE(tier.store(606, tokens_of(6).data(), 6));
  ASSERT_TRUE(eventually([&] { return tier.metrics().gc_removed_files >= 2; })) << tier.metrics().gc_removed_files;
  EXPECT_EQ(tier.metrics().gc_removed_files, 2u);
  EXPECT_FALSE(fs::exists(path(604)));
  EXPECT_FALSE(fs::exists(path(603)));
  EXPECT_TRUE(fs::exists(path(602)));
  EXPECT_TRUE(fs::exists(path(605))) << "used recently: kept though it was the oldest";
  EXPECT_TRUE(fs::exists(path(606)));
  EXPECT_LE(double(tier.metrics().bytes), 0.9 * o.capacity_bytes);
  // A TTL removes what has not been used for that long, whatever the room.
  DiskTierOptions ttl = options(dir.path);
  ttl.ttl_s = 1800;
  DiskTier expiring(ttl, kFingerprint, src.view, nullptr);  // its start-up scan collects
  EXPECT_FALSE(fs::exists(path(600))) << "unused for an hour";
  EXPECT_FALSE(fs::exists(path(602)));
  EXPECT_TRUE(fs::exists(path(605)));
  EXPECT_TRUE(fs::exists(path(606)));
}

TEST_P(DiskTierTest, ALookupHeldInItsReadHoldsUpNeitherAMissNorAnotherHit) {
  Dir dir("concurrent");
  Pool src(DType::kBF16, 29);
  {
    DiskTier writer(options(dir.path), kFingerprint, src.view, nullptr);
    store_all(writer, 900, 3);
  }
  LookupGate gate(DiskLookupStage::kOpened);
  DiskTierOptions o = options(dir.path);
  o.lookup_hook = [&](DiskLookupStage s) { gate.pass(s); };
  DiskTier tier(o, kFingerprint, src.view, nullptr);
  const auto [slow_keys, slow_tokens] = chain(900, 2);
  const uint64_t slow = tier.lookup(slow_keys, slow_tokens);
  ASSERT_TRUE(gate.wait_arrived());
  // While the first lookup's read cannot finish: a prompt with nothing on disk is answered (by
  // the probe, before any reader), and a hit on another block is read by another reader.
  std::vector<DiskLoad> loads;
  const auto [miss_keys, miss_tokens] = chain(950, 2);
  const uint64_t miss = tier.lookup(miss_keys, miss_tokens);
  EXPECT_TRUE(wait_for_load(tier, miss, loads)) << "a miss waited for a read";
  const uint64_t hit = tier.lookup({902}, tokens_of(2));
  EXPECT_TRUE(wait_for_load(tier, hit, loads)) << "a hit waited for another lookup's read";
  EXPECT_EQ(load_of(loads, slow), nullptr);
  gate.release();
  ASSERT_TRUE(wait_for_load(tier, slow, loads));
  ASSERT_NE(load_of(loads, miss), nullptr);
  EXPECT_EQ(load_of(loads, miss)->keys.size(), 0u);
  ASSERT_NE(load_of(loads, hit), nullptr);
  EXPECT_EQ(load_of(loads, hit)->keys, std::vector<uint64_t>({902}));
  EXPECT_EQ(load_of(loads, slow)->keys, slow_keys);
  const DiskTierMetrics m = tier.metrics();
  EXPECT_EQ(m.lookups, 3u);
  EXPECT_EQ(m.lookup_blocks, 5u);
  EXPECT_EQ(m.hit_blocks, 3u);
}

TEST_P(DiskTierTest, AnotherInstancesCollectorRemovingFilesDuringALookupNeverGivesWrongRows) {
  Dir dir("gc-while-reading");
  Pool src(DType::kBF16, 23), dst(DType::kBF16, 0);
  // Instance B collects with no room at all: each of its collections removes every block file.
  DiskTierOptions ob = options(dir.path);
  ob.capacity_bytes = 1;
  ob.gc_interval_s = 3600;
  DiskTier b(ob, kFingerprint, src.view, nullptr);
  const int64_t file = int64_t(disk_block_bytes(DiskBlockId::of(1, kFingerprint, src.spec)));
  const auto [keys, tokens] = chain(800, 3);
  for (DiskLookupStage stage : {DiskLookupStage::kOpened, DiskLookupStage::kProbed}) {
    SCOPED_TRACE(stage == DiskLookupStage::kOpened ? "removed after A opened the files" : "removed before A opened them");
    {
      DiskTier writer(options(dir.path), kFingerprint, src.view, nullptr);
      store_all(writer, 800, 3);
    }
    LookupGate gate(stage);
    DiskTierOptions oa = options(dir.path);
    oa.lookup_hook = [&](DiskLookupStage s) { gate.pass(s); };
    DiskTier a(oa, kFingerprint, dst.view, nullptr);
    const uint64_t ticket = a.lookup(keys, tokens);
    ASSERT_TRUE(gate.wait_arrived());
    const uint64_t removed_before = b.metrics().gc_removed_files;
    b.collect_garbage();
    EXPECT_EQ(b.metrics().gc_removed_files - removed_before, 3u);
    for (uint64_t k : keys) EXPECT_FALSE(fs::exists(block_file(dir, src, k)));
    gate.release();
    std::vector<DiskLoad> loads;
    ASSERT_TRUE(wait_for_load(a, ticket, loads));
    const DiskLoad& load = *load_of(loads, ticket);
    if (stage == DiskLookupStage::kOpened) {
      // POSIX: an open file outlives its name. The blocks are read whole and verified.
      ASSERT_EQ(load.keys, keys);
      std::fill(dst.bytes.begin(), dst.bytes.end(), 0);
      for (size_t i = 0; i < 3; ++i) {
        a.copy_rows(load, i, int32_t(i));
        EXPECT_EQ(dst.block(int32_t(i)), src.block(int32_t(i))) << "block " << i;
      }
      EXPECT_EQ(a.metrics().read_bytes, uint64_t(3 * file));
      // Read after their removal, so not on disk: a recomputation writes them again.
      EXPECT_TRUE(a.store(800, tokens_of(0).data(), 0)) << "a removed block is not taken for present";
      std::vector<int32_t> stored;
      ASSERT_TRUE(eventually([&] {
        a.take_stored(stored);
        return !stored.empty();
      }));
      fs::remove(block_file(dir, src, 800));
    } else {
      EXPECT_EQ(load.keys.size(), 0u) << "found gone when opened: a clean miss";
    }
    EXPECT_EQ(a.metrics().bad_blocks, 0u) << "a removed file is never a bad block";
    // Afterwards: a clean miss.
    EXPECT_EQ(look_up(a, keys, tokens).keys.size(), 0u);
    EXPECT_EQ(a.metrics().bad_blocks, 0u);
    EXPECT_EQ(a.metrics().lookups, 2u);
  }
}

TEST_P(DiskTierTest, ADirectoryThatCannotBeWrittenLeavesTheTierReadOnlyAndCounted) {
  Dir dir("readonly");
  Pool src(DType::kBF16, 17);
  fs::create_directories(dir.path);
  std::ofstream(dir.path + "/blocker") << "a file where a directory should be";
  DiskTier tier(options(dir.path + "/blocker/kv"), kFingerprint, src.view, nullptr);
  EXPECT_FALSE(tier.metrics().writable);
  EXPECT_FALSE(tier.metrics().last_error.empty());
  EXPECT_FALSE(tier.store(1, tokens_of(0).data(), 0));
  EXPECT_EQ(tier.metrics().skipped_writes, 1u);
  EXPECT_EQ(look_up(tier, 1, 1).keys.size(), 0u) << "lookups still answer (a miss)";

  // A write that fails later (the fan-out directory replaced by a file: as a full disk does,
  // the write throws) turns the tier read-only; nothing is left behind.
  Dir dir2("fails");
  DiskTier tier2(options(dir2.path), kFingerprint, src.view, nullptr);
  const std::string fan = block_file(dir2, src, 0xab00000000000001ull);
  fs::create_directories(fs::path(fan).parent_path().parent_path());
  std::ofstream(fs::path(fan).parent_path().string()) << "not a directory";
  ASSERT_TRUE(tier2.store(0xab00000000000001ull, tokens_of(0).data(), 0));
  std::vector<int32_t> stored;
  ASSERT_TRUE(eventually([&] {
    tier2.take_stored(stored);
    return !stored.empty();
  })) << "a failed write still hands its block back";
  EXPECT_EQ(tier2.metrics().write_errors, 1u);
  EXPECT_FALSE(tier2.metrics().writable);
  EXPECT_FALSE(tier2.store(0xab00000000000002ull, tokens_of(1).data(), 1)) << "read-only until the retry time";
}

TEST(DiskTierDirectIo, ODirectReadsLoadTheSameBytes) {
  Dir dir("direct");
  Pool src(DType::kBF16, 19), dst(DType::kBF16, 0);
  DiskTierOptions o;
  o.dir = dir.path;
  o.direct_io = true;
  DiskTier writer(o, kFingerprint, src.view, nullptr);
  store_all(writer, 700, 2);
  DiskTier tier(o, kFingerprint, dst.view, nullptr);
  const DiskLoad load = look_up(tier, 700, 2);
  ASSERT_EQ(load.keys.size(), 2u);
  tier.copy_rows(load, 1, 0);
  EXPECT_EQ(dst.block(0), src.block(1));
}

INSTANTIATE_TEST_SUITE_P(Backends, DiskTierTest, ::testing::Values(BlockIoBackend::kUring, BlockIoBackend::kPread),
                         [](const auto& info) { return info.param == BlockIoBackend::kUring ? "io_uring" : "pread"; });

}  // namespace
}  // namespace dsinfer::cache
