#include "cache/disk_block_format.h"

#include <fcntl.h>
#include <stdio.h>
#include <unistd.h>

#include <atomic>
#include <cctype>
#include <chrono>
#include <cstddef>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <random>

#include "base/error.h"
#include "base/hash.h"
#include "base/hex.h"

namespace dsinfer::cache {

namespace {

constexpr char kMagic[8] = {'D', 'S', 'K', 'V', 'B', 'L', 'K', '1'};
constexpr uint32_t kVersion = 1;
constexpr uint64_t kBodySeed = 0x6b7662626f6479ull;  // "kvbbody"
constexpr uint64_t kHeadSeed = 0x6b766268656164ull;  // "kvbhead"

// The header as it lies in the file (64 bytes, no padding).
struct Header {
  char magic[8];
  uint32_t version, header_bytes;
  uint64_t key, fingerprint;
  uint32_t dtype, block_size, num_layers, row_bytes;
  uint64_t body_checksum, header_checksum;
};
static_assert(sizeof(Header) == kDiskBlockHeaderBytes);

size_t tokens_bytes(const DiskBlockId& id) { return size_t(id.block_size) * sizeof(int32_t); }
size_t rows_bytes(const DiskBlockId& id) { return size_t(id.num_layers * id.block_size * id.row_bytes); }

// Where block `block` of layer `l` starts in the pool.
const uint8_t* block_rows(const kernels::KvCacheView& cache, int64_t l, int32_t block) {
  const kernels::LatentCacheView layer = cache.layer(l);
  return static_cast<const uint8_t*>(layer.base) +
         size_t(block) * size_t(cache.spec.block_size) * size_t(cache.spec.row_bytes());
}

void check_matches(const DiskBlockId& id, const kernels::KvCacheView& cache, int32_t block) {
  check(cache.spec.dtype == id.dtype && cache.spec.block_size == id.block_size && cache.spec.num_layers == id.num_layers &&
            cache.spec.row_bytes() == id.row_bytes,
        "the KV pool's format differs from the block file's");
  check(block >= 0 && block < cache.num_blocks, "block ", block, " is outside the KV pool");
}

}  // namespace

std::string disk_format_dirname(const DiskBlockId& id) {
  return hex64(id.fingerprint) + "-" + dtype_name(id.dtype) + "-b" + std::to_string(id.block_size);
}

std::string disk_block_path(const DiskBlockId& id) {
  const std::string key = hex64(id.key);
  return disk_format_dirname(id) + "/" + key.substr(0, 2) + "/" + key + ".kvb";
}

size_t disk_block_bytes(const DiskBlockId& id) { return kDiskBlockHeaderBytes + tokens_bytes(id) + rows_bytes(id); }

std::vector<uint8_t> encode_disk_block(const DiskBlockId& id, const int32_t* tokens, const kernels::KvCacheView& cache,
                                       int32_t block) {
  check_matches(id, cache, block);
  std::vector<uint8_t> out(disk_block_bytes(id));
  uint8_t* body = out.data() + kDiskBlockHeaderBytes;
  std::memcpy(body, tokens, tokens_bytes(id));
  const size_t layer_bytes = size_t(id.block_size * id.row_bytes);
  for (int64_t l = 0; l < id.num_layers; ++l)
    std::memcpy(body + tokens_bytes(id) + size_t(l) * layer_bytes, block_rows(cache, l, block), layer_bytes);
  Header h{};
  std::memcpy(h.magic, kMagic, sizeof kMagic);
  h.version = kVersion;
  h.header_bytes = uint32_t(kDiskBlockHeaderBytes);
  h.key = id.key;
  h.fingerprint = id.fingerprint;
  h.dtype = uint32_t(id.dtype);
  h.block_size = uint32_t(id.block_size);
  h.num_layers = uint32_t(id.num_layers);
  h.row_bytes = uint32_t(id.row_bytes);
  h.body_checksum = checksum_bytes(kBodySeed, body, out.size() - kDiskBlockHeaderBytes);
  h.header_checksum = checksum_bytes(kHeadSeed, &h, offsetof(Header, header_checksum));
  std::memcpy(out.data(), &h, sizeof h);
  return out;
}

DiskBlockCheck verify_disk_block(const uint8_t* data, size_t size, const DiskBlockId& id, const int32_t* tokens,
                                 std::string& why) {
  if (size < kDiskBlockHeaderBytes) {
    why = str("truncated: ", size, " bytes, shorter than the header");
    return DiskBlockCheck::kBad;
  }
  Header h;
  std::memcpy(&h, data, sizeof h);
  if (std::memcmp(h.magic, kMagic, sizeof kMagic) != 0 || h.version != kVersion ||
      h.header_bytes != kDiskBlockHeaderBytes) {
    why = "not a dsinfer KV block file (magic or version)";
    return DiskBlockCheck::kBad;
  }
  if (h.header_checksum != checksum_bytes(kHeadSeed, &h, offsetof(Header, header_checksum))) {
    why = "corrupt header (checksum)";
    return DiskBlockCheck::kBad;
  }
  if (h.key != id.key || h.fingerprint != id.fingerprint) {
    why = "a block of another prefix or model";
    return DiskBlockCheck::kBad;
  }
  if (h.dtype != uint32_t(id.dtype) || h.block_size != uint32_t(id.block_size) || h.num_layers != uint32_t(id.num_layers) ||
      h.row_bytes != uint32_t(id.row_bytes)) {
    why = "a block of another cache format (dtype, block size, layers or row size)";
    return DiskBlockCheck::kBad;
  }
  if (size != disk_block_bytes(id)) {
    why = str(size < disk_block_bytes(id) ? "truncated: " : "too long: ", size, " bytes, expected ",
              disk_block_bytes(id));
    return DiskBlockCheck::kBad;
  }
  const uint8_t* body = data + kDiskBlockHeaderBytes;
  if (h.body_checksum != checksum_bytes(kBodySeed, body, size - kDiskBlockHeaderBytes)) {
    why = "corrupt rows or tokens (checksum)";
    return DiskBlockCheck::kBad;
  }
  if (std::memcmp(body, tokens, tokens_bytes(id)) != 0) {
    why = "the block holds other tokens (a key collision)";
    return DiskBlockCheck::kCollision;
  }
  return DiskBlockCheck::kGood;
}

void copy_disk_block_rows(const uint8_t* data, const DiskBlockId& id, const kernels::KvCacheView& cache, int32_t block) {
  check_matches(id, cache, block);
  const uint8_t* body = data + kDiskBlockHeaderBytes;
  const size_t layer_bytes = size_t(id.block_size * id.row_bytes);
  for (int64_t l = 0; l < id.num_layers; ++l)
    std::memcpy(const_cast<uint8_t*>(block_rows(cache, l, block)), body + tokens_bytes(id) + size_t(l) * layer_bytes,
                layer_bytes);
}

bool load_disk_block(const uint8_t* data, size_t size, const DiskBlockId& id, const int32_t* tokens,
                     const kernels::KvCacheView& cache, int32_t block, std::string& why) {
  check_matches(id, cache, block);
  if (verify_disk_block(data, size, id, tokens, why) != DiskBlockCheck::kGood) return false;
  copy_disk_block_rows(data, id, cache, block);
  return true;
}

bool parse_disk_block_name(const std::string& name, uint64_t& key) {
  if (name.size() != 16 + 4 || name.compare(16, 4, ".kvb") != 0) return false;
  return parse_hex64(name.substr(0, 16), key) && key != 0;
}

namespace {

// What makes a temporary file's name this writer's alone among every instance on every host
// sharing the directory: the host's name (two hosts' pids collide), a random nonce drawn once per
// process (two containers may share a host name and a pid), the pid, then a counter per call.
std::string temp_name_stem() {
  static const std::string host_and_nonce = [] {
    char host[256] = {};
    if (::gethostname(host, sizeof host - 1) != 0) host[0] = 0;
    std::string name;
    for (const char* c = host; *c; ++c)
      name += (std::isalnum(static_cast<unsigned char>(*c)) || *c == '-' || *c == '.') ? *c : '_';
    if (name.empty()) name = "host";
    uint64_t nonce = uint64_t(std::chrono::steady_clock::now().time_since_epoch().count()) ^ uint64_t(::getpid());
    try {
      std::random_device rd;
      nonce ^= (uint64_t(rd()) << 32) | uint64_t(rd());
    } catch (const std::exception&) {
      // No entropy source: the clock's nanoseconds and the pid will do.
    }
    return name + "." + hex64(mix64(nonce));
  }();
  return host_and_nonce + "." + std::to_string(::getpid());
}

enum class Publish { kDone, kAlreadyThere, kFailed };

// Gives the temporary file its final name unless a file has it already (then the temporary
// file is removed: the name is the content's, so the one there holds the same block, or a bad
// file its reader removes). rename() would replace it silently; renameat2(RENAME_NOREPLACE)
// refuses, and where the file system does not support it (NFS, some FUSE), link() refuses too.
Publish publish_temp_file(const std::string& tmp, const std::string& path, int& err) {
  auto unsupported = [](int e) { return e == EINVAL || e == ENOSYS || e == ENOTSUP || e == EOPNOTSUPP || e == EPERM; };
  if (::renameat2(AT_FDCWD, tmp.c_str(), AT_FDCWD, path.c_str(), RENAME_NOREPLACE) == 0) return Publish::kDone;
  if (errno == EEXIST) return Publish::kAlreadyThere;
  if (!unsupported(errno)) {
    err = errno;
    return Publish::kFailed;
  }
  if (::link(tmp.c_str(), path.c_str()) == 0) {
    ::unlink(tmp.c_str());
    return Publish::kDone;
  }
  if (errno == EEXIST) return Publish::kAlreadyThere;
  if (!unsupported(errno)) {
    err = errno;
    return Publish::kFailed;
  }
  // Neither: a plain rename, which replaces a file there with the same bytes.
  if (::rename(tmp.c_str(), path.c_str()) == 0) return Publish::kDone;
  err = errno;
  return Publish::kFailed;
}

}  // namespace

bool write_file_atomically(const std::string& path, const std::vector<uint8_t>& bytes) {
  namespace fs = std::filesystem;
  const fs::path target(path);
  std::error_code ec;
  fs::create_directories(target.parent_path(), ec);
  check(!ec, "cannot create ", target.parent_path().string(), ": ", ec.message());
  // Unique per host, process and call: concurrent writers never share a temporary file.
  static std::atomic<uint64_t> counter{0};
  const std::string tmp = path + ".tmp." + temp_name_stem() + "." + std::to_string(counter++);
  const int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
  check(fd >= 0, "cannot create ", tmp, ": ", std::strerror(errno));
  size_t done = 0;
  int err = 0;
  while (done < bytes.size()) {
    const ssize_t w = ::write(fd, bytes.data() + done, bytes.size() - done);
    if (w < 0 && errno == EINTR) continue;
    if (w <= 0) {
      err = w < 0 ? errno : EIO;
      break;
    }
    done += size_t(w);
  }
  if (::close(fd) != 0 && err == 0) err = errno;
  Publish published = Publish::kFailed;
  if (err == 0) published = publish_temp_file(tmp, path, err);
  if (published != Publish::kDone) ::unlink(tmp.c_str());
  if (published == Publish::kFailed) fail("cannot write ", path, ": ", std::strerror(err));
  return published == Publish::kDone;
}

}  // namespace dsinfer::cache
