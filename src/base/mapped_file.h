// A read-only memory mapping of a whole file. Checkpoint tensors are views into it: weights are
// never copied, and the OS pages them in on first touch.
//
// A weight that is repacked at load (model/, kernels::pack_matrix) is read once and never again,
// but the pages it was read through stay mapped, and so count in the process's resident set,
// beside the packed copy: the checkpoint would be resident twice. release() gives those pages
// back once their contents have been copied.
#pragma once

#include <cstddef>
#include <cstdint>
#include <map>
#include <mutex>
#include <string>
#include <utility>

namespace dsinfer {

class MappedFile {
 public:
  explicit MappedFile(const std::string& path);  // throws Error naming the path
  ~MappedFile();
  MappedFile(const MappedFile&) = delete;
  MappedFile& operator=(const MappedFile&) = delete;

  const uint8_t* data() const { return data_; }
  size_t size() const { return size_; }
  const std::string& path() const { return path_; }
  bool contains(const void* p) const {
    auto* b = static_cast<const uint8_t*>(p);
    return data_ && b >= data_ && b < data_ + size_;
  }

  // Declares bytes [offset, offset + bytes) no longer needed and drops this process's mapping of
  // every page that lies wholly inside the ranges released so far (madvise MADV_DONTNEED). The
  // mapping is MAP_PRIVATE and read-only, so those pages are clean page-cache pages: dropping
  // them discards nothing, and a later read of the range faults the same bytes back in from the
  // file. Releasing is therefore always safe; it only makes a later read slower. A page shared
  // with a range that is still in use (a norm weight beside a packed matrix) stays until that
  // range is released too: released ranges are remembered and merged, so a run of released
  // tensors is given back whole, edge pages included. Throws Error if the range is out of bounds.
  void release(size_t offset, size_t bytes);
  // Bytes of the pages given back so far (those wholly inside released ranges).
  size_t released_bytes() const;

 private:
  // The pages wholly inside bytes [b, e), as a page-aligned byte range (empty: first == last).
  std::pair<size_t, size_t> whole_pages(size_t b, size_t e) const;

  std::string path_;
  const uint8_t* data_ = nullptr;
  size_t size_ = 0;
  mutable std::mutex mu_;
  std::map<size_t, size_t> released_;  // disjoint, non-adjacent [begin, end) byte ranges
};

}  // namespace dsinfer
