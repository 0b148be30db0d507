#include "base/read_file.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "base/error.h"

namespace dsinfer {

std::string read_regular_file(const std::string& path, const std::string& what, size_t max_bytes) {
  struct stat st {};
  if (::stat(path.c_str(), &st) != 0) fail("cannot open ", what, " ", path, ": ", std::strerror(errno));
  // Checked before open: opening a FIFO for reading waits for a writer.
  if (!S_ISREG(st.st_mode))
    fail(what, " ", path, " is not a regular file (", S_ISDIR(st.st_mode) ? "a directory" : "a FIFO, device or socket",
         ")");
  // O_NONBLOCK too, in case the path was swapped for a FIFO between stat and open.
  int fd = ::open(path.c_str(), O_RDONLY | O_NONBLOCK | O_CLOEXEC);
  if (fd < 0) fail("cannot open ", what, " ", path, ": ", std::strerror(errno));
  std::string out;
  try {
    if (::fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) fail(what, " ", path, " is not a regular file");
    if (size_t(st.st_size) > max_bytes) fail(what, " ", path, " is ", st.st_size, " bytes, more than the ", max_bytes, " allowed");
    out.resize(size_t(st.st_size));
    size_t done = 0;
    while (done < out.size()) {
      ssize_t n = ::read(fd, out.data() + done, out.size() - done);
      if (n < 0 && errno == EINTR) continue;
      if (n < 0) fail("cannot read ", what, " ", path, ": ", std::strerror(errno));
      if (n == 0) break;  // the file shrank while being read
      done += size_t(n);
    }
    out.resize(done);
  } catch (...) {
    ::close(fd);
    throw;
  }
  ::close(fd);
  return out;
}

}  // namespace dsinfer
