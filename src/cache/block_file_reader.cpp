#include "cache/block_file_reader.h"

#include <fcntl.h>
#ifdef DSINFER_HAVE_URING
#include <liburing.h>
#endif
#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstdlib>
#include <cstring>

#include "base/error.h"
#include "base/log.h"

namespace dsinfer::cache {

namespace {
constexpr size_t kPage = 4096;
constexpr unsigned kRingDepth = 64;
size_t round_up(size_t n) { return (n + kPage - 1) / kPage * kPage; }
}  // namespace

void PageBuffer::Free::operator()(uint8_t* p) const { std::free(p); }

PageBuffer::PageBuffer(size_t bytes) : capacity_(round_up(bytes == 0 ? 1 : bytes)) {
  data_.reset(static_cast<uint8_t*>(std::aligned_alloc(kPage, capacity_)));
  check(data_ != nullptr, "out of memory for a ", capacity_, "-byte block file buffer");
}

#ifdef DSINFER_HAVE_URING
struct BlockFileReader::Ring {
  io_uring ring;
};
#else
struct BlockFileReader::Ring {};
#endif

BlockFileReader::BlockFileReader(BlockIoBackend backend, bool direct_io) : backend_(backend), direct_io_(direct_io) {
  if (backend_ != BlockIoBackend::kUring) return;
#ifndef DSINFER_HAVE_URING
  static std::atomic<bool> said{false};
  log_warn_once(said, "KV disk tier: built without liburing; reading with pread");
  backend_ = BlockIoBackend::kPread;
#else
  auto ring = std::make_unique<Ring>();
  const int rc = io_uring_queue_init(kRingDepth, &ring->ring, 0);
  if (rc < 0) {
    static std::atomic<bool> said{false};  // every reader of every tier would say the same
    log_warn_once(said, "KV disk tier: io_uring is not available here (", std::strerror(-rc), "); reading with pread");
    backend_ = BlockIoBackend::kPread;
    return;
  }
  ring_ = std::move(ring);
#endif
}

BlockFileReader::~BlockFileReader() {
#ifdef DSINFER_HAVE_URING
  if (ring_) io_uring_queue_exit(&ring_->ring);
#endif
}

bool BlockFileReader::open(BlockFileRead& f, int& error) {
  const bool direct = direct_io_ && !direct_refused_;
  f.fd = ::open(f.path.c_str(), O_RDONLY | O_CLOEXEC | (direct ? O_DIRECT : 0));
  if (f.fd < 0 && direct && errno == EINVAL) {
    // tmpfs and some network file systems refuse O_DIRECT: read through the page cache there
    // (said once, not once per reader).
    static std::atomic<bool> said{false};
    log_warn_once(said, "KV disk tier: the file system refuses O_DIRECT; reading through the page cache");
    direct_refused_ = true;
    f.fd = ::open(f.path.c_str(), O_RDONLY | O_CLOEXEC);
  }
  if (f.fd < 0) {
    error = errno;
    return false;
  }
  struct stat st;
  if (::fstat(f.fd, &st) != 0 || !S_ISREG(st.st_mode)) {
    error = S_ISREG(st.st_mode) ? errno : EINVAL;
    ::close(f.fd);
    f.fd = -1;
    return false;
  }
  f.size = size_t(st.st_size);
  return true;
}

void BlockFileReader::close(std::vector<BlockFileRead>& files) {
  for (BlockFileRead& f : files)
    if (f.fd >= 0) {
      ::close(f.fd);
      f.fd = -1;
    }
}

void BlockFileReader::read_pread(BlockFileRead& f) {
  // Whole pages from where the last read ended (O_DIRECT wants aligned lengths and offsets; a
  // read past the end stops at the end).
  while (f.got < f.size) {
    const size_t at = f.got / kPage * kPage;
    const ssize_t r = ::pread(f.fd, f.data.data() + at, f.data.capacity() - at, off_t(at));
    if (r < 0 && errno == EINTR) continue;
    if (r < 0) {
      f.error = errno;
      return;
    }
    if (size_t(r) + at <= f.got) {  // nothing new: the file shrank under us
      f.error = EIO;
      return;
    }
    f.got = std::min(f.size, at + size_t(r));
  }
}

void BlockFileReader::read(std::vector<BlockFileRead>& files) {
  for (BlockFileRead& f : files) {
    if (f.data.capacity() < f.size) f.data = PageBuffer(f.size);
    f.got = 0;
    f.error = 0;
  }
  if (backend_ == BlockIoBackend::kUring) read_uring(files);
  // Whatever the ring left short (a rare partial read) is finished here.
  for (BlockFileRead& f : files)
    if (f.error == 0 && f.got < f.size) read_pread(f);
}

#ifdef DSINFER_HAVE_URING
void BlockFileReader::give_up_ring(const char* what, int rc, std::vector<BlockFileRead>& files) {
  // Never seen in practice; if the ring breaks, it is torn down (the kernel finishes or cancels
  // what was in flight) and every read from here on uses pread, this batch's included.
  log_warn("KV disk tier: io_uring ", what, " failed (", std::strerror(-rc), "); reading with pread from now on");
  io_uring_queue_exit(&ring_->ring);
  ring_.reset();
  backend_ = BlockIoBackend::kPread;
  for (BlockFileRead& f : files) {
    f.got = 0;
    f.error = 0;
  }
}

void BlockFileReader::read_uring(std::vector<BlockFileRead>& files) {
  io_uring* ring = &ring_->ring;
  size_t next = 0, in_flight = 0;
  while (next < files.size() || in_flight > 0) {
    // Keep the ring full: every file of the batch in flight at once, up to its depth.
    while (next < files.size()) {
      io_uring_sqe* sqe = io_uring_get_sqe(ring);
      if (!sqe) break;
      BlockFileRead& f = files[next];
      io_uring_prep_read(sqe, f.fd, f.data.data(), unsigned(f.data.capacity()), 0);
      io_uring_sqe_set_data(sqe, &f);
      ++next;
      ++in_flight;
    }
    const int submitted = io_uring_submit(ring);
    if (submitted < 0 && submitted != -EINTR && submitted != -EAGAIN) {
      // The ring failed as a whole: pread reads what it did not.
      give_up_ring("submit", submitted, files);
      return;
    }
    io_uring_cqe* cqe = nullptr;
    const int rc = io_uring_wait_cqe(ring, &cqe);
    if (rc == -EINTR) continue;
    if (rc < 0) {
      give_up_ring("wait", rc, files);
      return;
    }
    auto* f = static_cast<BlockFileRead*>(io_uring_cqe_get_data(cqe));
    if (cqe->res < 0) f->error = -cqe->res;
    else f->got = std::min(f->size, size_t(cqe->res));
    io_uring_cqe_seen(ring, cqe);
    --in_flight;
  }
}

#else
void BlockFileReader::give_up_ring(const char*, int, std::vector<BlockFileRead>&) {}
void BlockFileReader::read_uring(std::vector<BlockFileRead>&) {}
#endif

}  // namespace dsinfer::cache
