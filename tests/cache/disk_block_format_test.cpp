// The disk tier's block files: what is written is what is loaded, into any block of any pool of
// the same format, and nothing else ever is.
#include "cache/disk_block_format.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <atomic>
#include <filesystem>
#include <fstream>
#include <thread>

#include "base/error.h"
#include "test_pool.h"

namespace dsinfer::cache {
namespace {

TEST(DiskBlockFormat, RoundTripsIntoAnotherBlockOfAnotherPool) {
  for (DType dtype : {DType::kBF16, DType::kF8E4M3}) {
    SCOPED_TRACE(dtype_name(dtype));
    Pool src(dtype, 7), dst(dtype, 0);
    const auto tokens = tokens_of(1);
    const DiskBlockId id = DiskBlockId::of(0x1234, 0xabcd, src.spec);
    const auto file = encode_disk_block(id, tokens.data(), src.view, 1);
    EXPECT_EQ(file.size(), disk_block_bytes(id));
    EXPECT_EQ(file.size(), kDiskBlockHeaderBytes + 64 * 4 + size_t(3 * 64 * src.spec.row_bytes()));
    std::string why;
    ASSERT_TRUE(load_disk_block(file.data(), file.size(), id, tokens.data(), dst.view, 3, why)) << why;
    EXPECT_EQ(dst.block(3), src.block(1));
    EXPECT_EQ(dst.block(2), Pool(dtype, 0).block(2));  // nothing else touched
  }
}

TEST(DiskBlockFormat, EveryCorruptOrTruncatedFileIsAMissAndWritesNothing) {
  Pool src(DType::kBF16, 3), dst(DType::kBF16, 0);
  const auto tokens = tokens_of(2);
  const DiskBlockId id = DiskBlockId::of(77, 88, src.spec);
  const auto file = encode_disk_block(id, tokens.data(), src.view, 0);
  const auto zero = dst.block(0);
  std::string why;
  for (size_t i = 0; i < file.size(); i += 97) {
    auto bad = file;
    bad[i] ^= 0x10;
    EXPECT_FALSE(load_disk_block(bad.data(), bad.size(), id, tokens.data(), dst.view, 0, why)) << "byte " << i;
  }
  for (size_t cut : {size_t(0), size_t(10), kDiskBlockHeaderBytes, file.size() / 2, file.size() - 1}) {
    EXPECT_FALSE(load_disk_block(file.data(), cut, id, tokens.data(), dst.view, 0, why)) << cut;
    EXPECT_NE(why.find("truncated"), std::string::npos) << why;
  }
  auto longer = file;
  longer.push_back(0);
  EXPECT_FALSE(load_disk_block(longer.data(), longer.size(), id, tokens.data(), dst.view, 0, why));
  EXPECT_EQ(dst.block(0), zero);
}

TEST(DiskBlockFormat, ForeignBlocksAreMisses) {
  Pool bf16(DType::kBF16, 5), fp8(DType::kF8E4M3, 0), dst(DType::kBF16, 0);
  const auto tokens = tokens_of(3);
  const DiskBlockId id = DiskBlockId::of(1, 2, bf16.spec);
  const auto file = encode_disk_block(id, tokens.data(), bf16.view, 2);
  std::string why;
  DiskBlockId other_key = id, other_model = id;
  other_key.key = 9;
  other_model.fingerprint = 9;
  EXPECT_FALSE(load_disk_block(file.data(), file.size(), other_key, tokens.data(), dst.view, 0, why));
  EXPECT_NE(why.find("another prefix"), std::string::npos) << why;
  EXPECT_FALSE(load_disk_block(file.data(), file.size(), other_model, tokens.data(), dst.view, 0, why));
  // Read into an FP8 pool: the cache format differs.
  EXPECT_FALSE(load_disk_block(file.data(), file.size(), DiskBlockId::of(1, 2, fp8.spec), tokens.data(), fp8.view, 0, why));
  EXPECT_NE(why.find("another cache format"), std::string::npos) << why;
  // Same key, other tokens: a hash collision is a miss too.
  EXPECT_FALSE(load_disk_block(file.data(), file.size(), id, tokens_of(4).data(), dst.view, 0, why));
  EXPECT_NE(why.find("other tokens"), std::string::npos) << why;
  EXPECT_EQ(dst.block(0), Pool(DType::kBF16, 0).block(0));
}

TEST(DiskBlockFormat, PathsNameModelFormatAndKey) {
  kernels::KvCacheSpec spec;
  spec.num_layers = 61;
  spec.dtype = DType::kF8E4M3;
  const DiskBlockId id = DiskBlockId::of(0xfedcba9876543210ull, 0x0123456789abcdefull, spec);
  EXPECT_EQ(disk_block_path(id), "0123456789abcdef-F8_E4M3-b64/fe/fedcba9876543210.kvb");
  DiskBlockId bf16 = id;
  bf16.dtype = DType::kBF16;
  EXPECT_NE(disk_block_path(bf16), disk_block_path(id));
}

class AtomicWrite : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = std::filesystem::temp_directory_path() / ("dsinfer-kvb-" + std::to_string(::getpid()));
    std::filesystem::remove_all(dir_);
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }
  std::vector<uint8_t> read(const std::filesystem::path& p) {
    std::ifstream f(p, std::ios::binary);
    return {std::istreambuf_iterator<char>(f), {}};
  }
  size_t files_under(const std::filesystem::path& p) {
    size_t n = 0;
    for (const auto& e : std::filesystem::recursive_directory_iterator(p)) n += e.is_regular_file();
    return n;
  }
  std::filesystem::path dir_;
};

TEST_F(AtomicWrite, ConcurrentWritersOfOneBlockLeaveOneWholeFile) {
  const auto path = dir_ / "m" / "ab" / "block.kvb";
  const std::vector<uint8_t> bytes(1 << 20, 0x42);
  std::vector<std::thread> writers;
  for (int i = 0; i < 4; ++i) writers.emplace_back([&] { write_file_atomically(path.string(), bytes); });
  for (auto& t : writers) t.join();
  EXPECT_EQ(read(path), bytes);
  EXPECT_EQ(files_under(dir_), 1u);  // no temporary file left behind
}

TEST_F(AtomicWrite, AFileAlreadyUnderTheNameIsKeptAndTheWriteSaysSo) {
  const auto path = dir_ / "m" / "cd" / "block.kvb";
  const std::vector<uint8_t> first(4096, 0x11), second(4096, 0x22);
  EXPECT_TRUE(write_file_atomically(path.string(), first));
  EXPECT_FALSE(write_file_atomically(path.string(), second)) << "another writer's file is there: already present";
  EXPECT_EQ(read(path), first) << "never replaced";
  EXPECT_EQ(files_under(dir_), 1u) << "the temporary file is removed";
  // Of writers racing on one name, exactly one puts its file there.
  const auto raced = dir_ / "m" / "ef" / "block.kvb";
  std::atomic<int> written{0};
  std::vector<std::thread> writers;
  for (int i = 0; i < 4; ++i)
    writers.emplace_back([&] { written += write_file_atomically(raced.string(), first) ? 1 : 0; });
  for (auto& t : writers) t.join();
  EXPECT_EQ(written.load(), 1);
  EXPECT_EQ(files_under(dir_), 2u);
}

TEST_F(AtomicWrite, AnUnwritableDirectoryIsAnErrorAndLeavesNothing) {
  std::filesystem::create_directories(dir_);
  std::ofstream(dir_ / "file") << "x";  // a file where a directory is needed
  EXPECT_THROW(write_file_atomically((dir_ / "file" / "b.kvb").string(), {1, 2, 3}), Error);
  EXPECT_EQ(files_under(dir_), 1u);
}

}  // namespace
}  // namespace dsinfer::cache
