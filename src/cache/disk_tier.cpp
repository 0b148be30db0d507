#include "cache/disk_tier.h"

#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstring>
#include <filesystem>

#include "base/error.h"
#include "base/log.h"
#include "base/timer.h"
#include "cache/disk_block_directory.h"

namespace dsinfer::cache {

namespace {
// Files that fail verification are logged this many times, then only counted (/metrics).
constexpr uint64_t kLoggedBadBlocks = 5;
}  // namespace

DiskTier::DiskTier(DiskTierOptions options, uint64_t fingerprint, const kernels::KvCacheView& cache,
                   std::function<void()> on_load)
    : options_(std::move(options)),
      format_(DiskBlockId::of(0, fingerprint, cache.spec)),
      cache_(cache),
      on_load_(std::move(on_load)) {
  check(!options_.dir.empty(), "the KV disk tier needs a directory");
  check(options_.capacity_bytes > 0, "the KV disk tier's capacity must be positive");
  check(options_.reader_threads >= 1, "the KV disk tier needs at least one reader thread");
  for (int i = 0; i < options_.reader_threads; ++i)
    readers_.push_back(std::make_unique<BlockFileReader>(options_.backend, options_.direct_io));
  m_.capacity_bytes = options_.capacity_bytes;
  const std::string format_dir = options_.dir + "/" + disk_format_dirname(format_);
  std::error_code ec;
  std::filesystem::create_directories(format_dir, ec);
  if (ec) {
    // Blocks other instances wrote can still be read; nothing is written until a retry works.
    m_.writable = false;
    m_.last_error = str("cannot create ", format_dir, ": ", ec.message());
    read_only_until_ = now_seconds() + options_.retry_after_error_s;
    log_warn("KV disk tier: ", m_.last_error, "; serving from RAM and reading what is there");
  }
  collect_garbage();  // the index of what is on disk, rebuilt from the directory
  log_info("KV disk tier: ", options_.dir, " (", m_.files, " block files, ", double(m_.bytes) / 1e9, " GB of ",
           options_.capacity_bytes / 1e9, " GB; ", present_.size(), " of this model and cache format), reads with ",
           readers_[0]->backend_name(), options_.direct_io ? " (O_DIRECT)" : "", " on ", readers_.size(), " threads");
  probe_thread_ = std::thread([this] { probe_loop(); });
  for (auto& r : readers_) read_threads_.emplace_back([this, reader = r.get()] { read_loop(*reader); });
  write_thread_ = std::thread([this] { write_loop(); });
  gc_thread_ = std::thread([this] { gc_loop(); });
}

DiskTier::~DiskTier() {
  {
    std::lock_guard lock(mu_);
    stop_ = true;
  }
  probe_cv_.notify_all();
  read_cv_.notify_all();
  write_cv_.notify_all();
  gc_cv_.notify_all();
  probe_thread_.join();
  for (std::thread& t : read_threads_) t.join();
  write_thread_.join();  // after the writes already queued: a graceful stop keeps them
  gc_thread_.join();
}

std::string DiskTier::path_of(uint64_t key) const {
  DiskBlockId id = format_;
  id.key = key;
  return options_.dir + "/" + disk_block_path(id);
}

uint64_t DiskTier::lookup(std::vector<uint64_t> keys, std::vector<int32_t> tokens) {
  check(tokens.size() == keys.size() * size_t(format_.block_size), "a disk lookup needs block_size tokens per key");
  uint64_t ticket;
  {
    std::lock_guard lock(mu_);
    ticket = next_ticket_++;
    lookups_.push_back({ticket, std::move(keys), std::move(tokens)});
  }
  probe_cv_.notify_one();
  return ticket;
}

void DiskTier::take_loads(std::vector<DiskLoad>& out) {
  std::lock_guard lock(mu_);
  for (DiskLoad& l : loads_) out.push_back(std::move(l));
  loads_.clear();
}

void DiskTier::copy_rows(const DiskLoad& load, size_t i, int32_t block) const {
  copy_disk_block_rows(load.files[i].data(), format_, cache_, block);
}

void DiskTier::recycle(DiskLoad& load) {
  std::lock_guard lock(mu_);
  for (PageBuffer& b : load.files) {
    if (spare_bytes_ + b.capacity() > kSpareBytes) break;
    spare_bytes_ += b.capacity();
    spare_.push_back(std::move(b));
  }
  load.files.clear();
}

bool DiskTier::store(uint64_t key, const int32_t* tokens, int32_t block) {
  {
    std::lock_guard lock(mu_);
    if (present_.count(key)) return false;
    if (!m_.writable && now_seconds() < read_only_until_) {
      ++m_.skipped_writes;
      return false;
    }
    if (writing_ >= options_.max_pending_writes) {
      ++m_.skipped_writes;
      return false;
    }
    ++writing_;
    writes_.push_back({key, std::vector<int32_t>(tokens, tokens + format_.block_size), block});
  }
  write_cv_.notify_one();
  return true;
}

void DiskTier::take_stored(std::vector<int32_t>& blocks) {
  std::lock_guard lock(mu_);
  blocks.insert(blocks.end(), stored_.begin(), stored_.end());
  stored_.clear();
}

DiskTierMetrics DiskTier::metrics() const {
  std::lock_guard lock(mu_);
  DiskTierMetrics m = m_;
  m.bytes += bytes_since_scan_;
  m.files += files_since_scan_;
  return m;
}

void DiskTier::finish_lookup(DiskLoad load) {
  {
    std::lock_guard lock(mu_);
    loads_.push_back(std::move(load));
  }
  if (on_load_) on_load_();
}

bool DiskTier::take_lookup(std::unique_lock<std::mutex>& lock, std::condition_variable& cv,
                           std::deque<LookupJob>& queue, LookupJob& job) {
  cv.wait(lock, [&] { return stop_ || !queue.empty(); });
  if (stop_) return false;
  job = std::move(queue.front());
  queue.pop_front();
  return true;
}

void DiskTier::probe_loop() {
  // One stat per lookup, in the order asked: a prompt whose first block has no file (most new
  // prompts) is answered here at once, never queued behind the readers' batches.
  for (;;) {
    LookupJob job;
    {
      std::unique_lock lock(mu_);
      if (!take_lookup(lock, probe_cv_, lookups_, job)) return;
    }
    struct stat st;
    if (!job.keys.empty() && ::stat(path_of(job.keys[0]).c_str(), &st) == 0 && S_ISREG(st.st_mode)) {
      {
        std::lock_guard lock(mu_);
        reads_.push_back(std::move(job));
      }
      read_cv_.notify_one();
      continue;
    }
    DiskLoad miss;
    miss.ticket = job.ticket;
    {
      std::lock_guard lock(mu_);
      ++m_.lookups;
      m_.lookup_blocks += job.keys.size();
      if (!job.keys.empty()) present_.erase(job.keys[0]);  // another instance's collector removed it
    }
    finish_lookup(std::move(miss));
  }
}

void DiskTier::read_loop(BlockFileReader& reader) {
  for (;;) {
    LookupJob job;
    {
      std::unique_lock lock(mu_);
      if (!take_lookup(lock, read_cv_, reads_, job)) return;
      if (reading_++ == 0) reading_since_ = now_seconds();
    }
    DiskLoad load;
    try {
      load = run_lookup(reader, job);
    } catch (const std::exception& e) {
      // Out of memory for the buffers, most likely: this lookup misses, the tier goes on.
      log_warn("KV disk tier: a lookup failed: ", e.what());
      load = DiskLoad{};
    }
    load.ticket = job.ticket;
    {
      // The time any reader was busy, not the sum of theirs: bytes over it is the tier's rate.
      std::lock_guard lock(mu_);
      if (--reading_ == 0) m_.read_seconds += now_seconds() - reading_since_;
    }
    finish_lookup(std::move(load));
  }
}

DiskLoad DiskTier::run_lookup(BlockFileReader& reader, const LookupJob& job) {
  if (options_.lookup_hook) options_.lookup_hook(DiskLookupStage::kProbed);
  std::vector<BlockFileRead> files;
  files.reserve(job.keys.size());
  std::vector<uint64_t> gone;  // keys whose files are not (or no longer) in the directory
  // Open in chain order up to the first block that is not there: a block is useless without its
  // parent, so nothing past a miss is read.
  for (uint64_t key : job.keys) {
    BlockFileRead f;
    f.path = path_of(key);
    int error = 0;
    if (!reader.open(f, error)) {
      if (error == ENOENT) gone.push_back(key);
      else log_debug("KV disk tier: cannot open ", f.path, ": ", std::strerror(error));
      break;
    }
    files.push_back(std::move(f));
  }
  if (!files.empty()) {
    // An open file stays readable whoever removes it now (POSIX): what is read is what was opened.
    if (options_.lookup_hook) options_.lookup_hook(DiskLookupStage::kOpened);
    if (options_.read_delay_s > 0)
      std::this_thread::sleep_for(std::chrono::duration<double>(options_.read_delay_s * double(files.size())));
  }
  {
    std::lock_guard lock(mu_);
    for (BlockFileRead& f : files) {
      if (spare_.empty()) break;
      f.data = std::move(spare_.back());
      spare_.pop_back();
      spare_bytes_ -= f.data.capacity();
    }
  }
  reader.read(files);
  DiskLoad load;
  uint64_t bytes = 0, bad = 0, collisions = 0;
  for (size_t i = 0; i < files.size(); ++i) {
    BlockFileRead& f = files[i];
    DiskBlockId id = format_;
    id.key = job.keys[i];
    std::string why;
    DiskBlockCheck verdict = DiskBlockCheck::kBad;
    if (f.error != 0) why = str("read failed: ", std::strerror(f.error));
    else if (f.got < f.size) why = "short read";
    else verdict = verify_disk_block(f.data.data(), f.size, id, job.tokens.data() + i * size_t(format_.block_size), why);
    if (verdict != DiskBlockCheck::kGood) {
      if (verdict == DiskBlockCheck::kCollision) {
        ++collisions;
      } else {
        ++bad;
        // Removed (and forgotten) so that the next computation of this block writes it again;
        // only if the name still holds the file read (another instance may have replaced it).
        struct stat read_st, now_st;
        if (f.error == 0 && ::fstat(f.fd, &read_st) == 0 && ::stat(f.path.c_str(), &now_st) == 0 &&
            read_st.st_ino == now_st.st_ino && read_st.st_dev == now_st.st_dev)
          ::unlink(f.path.c_str());
        uint64_t seen;
        {
          std::lock_guard lock(mu_);
          present_.erase(id.key);
          seen = m_.bad_blocks + bad;
        }
        if (seen <= kLoggedBadBlocks)
          log_warn("KV disk tier: ", f.path, " is unusable (", why, "); the block is recomputed",
                   seen == kLoggedBadBlocks ? " (further ones are only counted in /metrics)" : "");
      }
      break;
    }
    ::futimens(f.fd, nullptr);  // used now: the collectors of every instance see it as recent
    // Removed since it was opened (a collector): its bytes are sound and used, but it is no
    // longer on disk, so a recomputation of the block writes it again.
    struct stat st;
    if (::fstat(f.fd, &st) == 0 && st.st_nlink == 0) gone.push_back(id.key);
    bytes += f.size;
    load.keys.push_back(id.key);
    load.files.push_back(std::move(f.data));
  }
  BlockFileReader::close(files);
  std::lock_guard lock(mu_);
  ++m_.lookups;
  m_.lookup_blocks += job.keys.size();
  m_.hit_blocks += load.keys.size();
  m_.bad_blocks += bad;
  m_.collisions += collisions;
  m_.read_bytes += bytes;
  for (uint64_t k : load.keys) present_.insert(k);
  for (uint64_t k : gone) present_.erase(k);
  return load;
}

void DiskTier::write_loop() {
  for (;;) {
    WriteJob job;
    {
      std::unique_lock lock(mu_);
      write_cv_.wait(lock, [&] { return stop_ || !writes_.empty(); });
      if (writes_.empty()) return;  // stopping, and every queued write is done
      job = std::move(writes_.front());
      writes_.pop_front();
    }
    run_write(job);
    std::lock_guard lock(mu_);
    --writing_;
    stored_.push_back(job.block);
  }
}

void DiskTier::run_write(const WriteJob& job) {
  const std::string path = path_of(job.key);
  struct stat st;
  if (::stat(path.c_str(), &st) == 0) {  // another instance (or an earlier run) wrote it
    std::lock_guard lock(mu_);
    present_.insert(job.key);
    ++m_.already_present;
    return;
  }
  DiskBlockId id = format_;
  id.key = job.key;
  try {
    const std::vector<uint8_t> bytes = encode_disk_block(id, job.tokens.data(), cache_, job.block);
    const bool written = write_file_atomically(path, bytes);
    bool collect = false;
    {
      std::lock_guard lock(mu_);
      present_.insert(job.key);
      if (!m_.writable) {
        m_.writable = true;
        log_info("KV disk tier: writing again (", options_.dir, ")");
      }
      if (!written) {  // another instance renamed the same block into place since the stat
        ++m_.already_present;
        return;
      }
      ++m_.written_blocks;
      m_.written_bytes += bytes.size();
      bytes_since_scan_ += int64_t(bytes.size());
      ++files_since_scan_;
      collect = double(m_.bytes + bytes_since_scan_) > options_.capacity_bytes && !gc_requested_;
      gc_requested_ |= collect;
    }
    if (collect) gc_cv_.notify_one();
  } catch (const std::exception& e) {
    std::lock_guard lock(mu_);
    ++m_.write_errors;
    m_.last_error = e.what();
    read_only_until_ = now_seconds() + options_.retry_after_error_s;
    if (m_.writable)
      log_warn("KV disk tier: ", e.what(), "; serving from RAM without writing blocks for ", options_.retry_after_error_s,
               " s (reads go on)");
    m_.writable = false;
  }
}

void DiskTier::collect_garbage() {
  const double now = now_seconds_since_epoch();
  DiskDirectoryScan scan = scan_block_directory(options_.dir, options_.stale_temp_s, now);
  // Down to 90% of the capacity, so the next collection is not due at the very next write.
  const double over = double(scan.bytes) > options_.capacity_bytes ? 0.9 * options_.capacity_bytes : options_.capacity_bytes;
  const DiskGcResult gc = collect_block_garbage(scan, over, options_.ttl_s, now);
  const std::string mine = disk_format_dirname(format_);
  std::unordered_set<uint64_t> present;
  for (const DiskBlockEntry& e : scan.blocks)
    if (e.format == mine) present.insert(e.key);
  if (gc.removed_files > 0)
    log_info("KV disk tier: removed ", gc.removed_files, " least recently used or expired block files (",
             double(gc.removed_bytes) / 1e9, " GB); ", double(gc.bytes_left) / 1e9, " GB left");
  std::lock_guard lock(mu_);
  present_.swap(present);
  bytes_since_scan_ = files_since_scan_ = 0;
  m_.files = gc.files_left;
  m_.bytes = gc.bytes_left;
  ++m_.gc_runs;
  m_.gc_removed_files += uint64_t(gc.removed_files);
  m_.gc_removed_bytes += uint64_t(gc.removed_bytes);
}

void DiskTier::gc_loop() {
  for (;;) {
    {
      std::unique_lock lock(mu_);
      gc_cv_.wait_for(lock, std::chrono::duration<double>(options_.gc_interval_s), [&] { return stop_ || gc_requested_; });
      if (stop_) return;
      gc_requested_ = false;
    }
    try {
      collect_garbage();
    } catch (const std::exception& e) {
      log_warn("KV disk tier: garbage collection failed: ", e.what());
    }
  }
}

}  // namespace dsinfer::cache
