// Reading a whole small file (config.json, tokenizer files, an index) that a user pointed at.
// Plain std::ifstream blocks forever on a FIFO and "opens" a directory, failing later with a
// message that names no file; this checks what the path is before reading it.
#pragma once

#include <cstddef>
#include <string>

namespace dsinfer {

// The bytes of the regular file at `path`. Throws Error naming `what` and the path when it is
// missing, not a regular file (directory, FIFO, device, socket), unreadable, or over max_bytes.
// Never blocks on a FIFO: the path is checked with stat() and opened O_NONBLOCK.
std::string read_regular_file(const std::string& path, const std::string& what, size_t max_bytes = size_t(1) << 30);

}  // namespace dsinfer
