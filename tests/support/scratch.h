// Scratch files for tests: one directory per test process, gone when the process exits.
#pragma once

#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <string>

namespace dsinfer::testing {

// This process's own directory under the test temp dir, removed when the process exits. ctest
// runs the same binary several times at once (the model and engine suites once per kernel
// path), so a fixed scratch name would let one run delete or overwrite another's files; and a
// suite run hundreds of times must not leave its checkpoints behind to fill the disk.
inline const std::string& scratch_dir() {
  struct Owned {
    std::string path = ::testing::TempDir() + "/dsinfer-scratch-" + std::to_string(::getpid());
    pid_t owner = ::getpid();
    Owned() { std::filesystem::create_directories(path); }
    ~Owned() {
      std::error_code ec;  // a forked child (a death test) leaves its parent's files alone
      if (::getpid() == owner) std::filesystem::remove_all(path, ec);
    }
  };
  static const Owned dir;
  return dir.path;
}

// A path of this process's own, inside scratch_dir().
inline std::string scratch_path(const std::string& name) { return scratch_dir() + "/" + name; }

}  // namespace dsinfer::testing
