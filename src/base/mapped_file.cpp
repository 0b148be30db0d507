#include "base/mapped_file.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <iterator>

#include "base/error.h"

namespace dsinfer {

namespace {
const size_t kPage = size_t(::sysconf(_SC_PAGESIZE));
}  // namespace

MappedFile::MappedFile(const std::string& path) : path_(path) {
  // O_NONBLOCK: opening a FIFO for reading would otherwise wait for a writer forever; the fstat
  // below then refuses it. (The flag changes nothing for a regular file or its mapping.)
  int fd = ::open(path.c_str(), O_RDONLY | O_NONBLOCK | O_CLOEXEC);
  check(fd >= 0, "cannot open ", path, ": ", std::strerror(errno));
  struct stat st {};
  if (::fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
    ::close(fd);
    fail(path, " is not a regular file (a directory, FIFO, device or socket)");
  }
  size_ = size_t(st.st_size);
  if (size_ > 0) {
    void* p = ::mmap(nullptr, size_, PROT_READ, MAP_PRIVATE, fd, 0);
    if (p == MAP_FAILED) {
      int err = errno;
      ::close(fd);
      fail("cannot map ", path, ": ", std::strerror(err));
    }
    data_ = static_cast<const uint8_t*>(p);
  }
  ::close(fd);
}

MappedFile::~MappedFile() {
  if (data_) ::munmap(const_cast<uint8_t*>(data_), size_);
}

void MappedFile::release(size_t offset, size_t bytes) {
  check(offset <= size_ && bytes <= size_ - offset, path_, ": release of bytes [", offset, ", ", offset + bytes,
        ") runs past the end of the file (", size_, " bytes)");
  if (bytes == 0) return;
  std::lock_guard<std::mutex> lock(mu_);
  // Merge [offset, offset + bytes) with the released ranges it overlaps or touches.
  size_t b = offset, e = offset + bytes;
  auto it = released_.upper_bound(b);
  if (it != released_.begin() && std::prev(it)->second >= b) {
    --it;
    b = it->first;
    e = std::max(e, it->second);
    it = released_.erase(it);
  }
  while (it != released_.end() && it->first <= e) {
    e = std::max(e, it->second);
    it = released_.erase(it);
  }
  released_.emplace(b, e);
  // Give back the pages wholly inside the merged range [b, e) (the file's last page holds
  // nothing past the end, so a range reaching the end owns it whole; the mapping starts on a page
  // boundary) within a margin around the new range: pages farther away were given back by
  // earlier calls. The margin is there because reading the new range faulted in its neighbours
  // too: the kernel maps the cached pages around each fault ("fault-around", a 64 KiB aligned
  // window by default; a whole 2 MiB folio where the file is in huge pages), which brings back
  // the tail of the range released just before. Clearing 2 MiB on each side catches them and
  // keeps each call's page-table walk short.
  constexpr size_t kMargin = size_t(2) << 20;
  const auto [first, last] = whole_pages(b, e);
  const size_t from = std::max(first, offset / kMargin * kMargin);
  const size_t to = std::min(last, (offset + bytes + kMargin - 1) / kMargin * kMargin);
  // A failure would only leave the pages resident (memory, never correctness): not an error.
  if (from < to) ::madvise(const_cast<uint8_t*>(data_) + from, to - from, MADV_DONTNEED);
}

std::pair<size_t, size_t> MappedFile::whole_pages(size_t b, size_t e) const {
  const size_t first = (b + kPage - 1) / kPage * kPage;
  const size_t last = e == size_ ? (e + kPage - 1) / kPage * kPage : e / kPage * kPage;
  return {first, std::max(first, last)};
}

size_t MappedFile::released_bytes() const {
  std::lock_guard<std::mutex> lock(mu_);
  size_t n = 0;
  for (auto& [b, e] : released_) {
    auto [first, last] = whole_pages(b, e);
    n += last - first;
  }
  return n;
}

}  // namespace dsinfer
