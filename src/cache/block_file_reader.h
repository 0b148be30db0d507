// Reads whole block files of the disk tier in one batch: with io_uring (every read of a batch in
// flight at once, one thread, no copy through the page cache when O_DIRECT is asked for) or, where
// io_uring is unavailable (a container's seccomp profile often refuses it), with pread one file
// after another. Each of the disk tier's reader threads has its own.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

namespace dsinfer::cache {

// A file's contents in memory aligned for O_DIRECT (4 KiB), sized up to a whole number of pages.
class PageBuffer {
 public:
  PageBuffer() = default;
  explicit PageBuffer(size_t bytes);
  uint8_t* data() { return data_.get(); }
  const uint8_t* data() const { return data_.get(); }
  size_t capacity() const { return capacity_; }

 private:
  struct Free {
    void operator()(uint8_t* p) const;
  };
  std::unique_ptr<uint8_t, Free> data_;
  size_t capacity_ = 0;
};

enum class BlockIoBackend { kUring, kPread };

struct BlockFileRead {
  std::string path;
  int fd = -1;      // open, owned by the reader until read() returns
  size_t size = 0;  // the file's size (fstat)
  PageBuffer data;  // filled by read(): `size` bytes (a buffer given with room enough is reused)
  size_t got = 0;   // bytes read
  int error = 0;    // errno of a failed read, 0 if it succeeded
};

class BlockFileReader {
 public:
  // `backend` kUring falls back to kPread (logged) when the kernel refuses a ring.
  BlockFileReader(BlockIoBackend backend, bool direct_io);
  ~BlockFileReader();
  BlockFileReader(const BlockFileReader&) = delete;
  BlockFileReader& operator=(const BlockFileReader&) = delete;

  BlockIoBackend backend() const { return backend_; }
  const char* backend_name() const { return backend_ == BlockIoBackend::kUring ? "io_uring" : "pread"; }

  // Opens `path` for reading (O_DIRECT when asked and the file system allows it). False, with
  // errno's reason, when the file cannot be opened (ENOENT: not on disk).
  bool open(BlockFileRead& f, int& error);
  // Reads every opened file whole into its buffer (allocated unless the one given has room).
  // Each file's `got`/`error` tell how it went.
  void read(std::vector<BlockFileRead>& files);
  // Closes the files (done with the batch).
  static void close(std::vector<BlockFileRead>& files);

 private:
  struct Ring;
  BlockIoBackend backend_;
  bool direct_io_;
  bool direct_refused_ = false;  // the file system refused O_DIRECT once: stop asking
  std::unique_ptr<Ring> ring_;
  void read_uring(std::vector<BlockFileRead>& files);
  void give_up_ring(const char* what, int rc, std::vector<BlockFileRead>& files);
  static void read_pread(BlockFileRead& f);
};

}  // namespace dsinfer::cache
