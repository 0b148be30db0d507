#include "base/read_file.h"

#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <functional>
#include <future>
#include <string>

#include "base/error.h"
#include "base/mapped_file.h"

namespace dsinfer {
namespace {

namespace fs = std::filesystem;

struct TempDir {
  fs::path path;
  TempDir() {
    path = fs::path(::testing::TempDir()) / ("dsinfer-read-file-" + std::to_string(::getpid()));
    fs::create_directories(path);
  }
  ~TempDir() {
    std::error_code ec;
    fs::remove_all(path, ec);
  }
};

std::string error_of(const std::function<void()>& fn) {
  try {
    fn();
  } catch (const Error& e) {
    return e.what();
  }
  return "";
}

// Runs fn on another thread and fails (instead of hanging the suite) if it blocks.
std::string error_within_seconds(std::function<void()> fn) {
  auto f = std::async(std::launch::async, [fn] { return error_of(fn); });
  if (f.wait_for(std::chrono::seconds(5)) != std::future_status::ready) {
    ADD_FAILURE() << "blocked on a FIFO";
    std::abort();  // the blocked thread cannot be joined; a hang would be worse
  }
  return f.get();
}

TEST(ReadRegularFile, ReadsAFile) {
  TempDir d;
  std::ofstream(d.path / "f.json") << "{\"a\": 1}";
  EXPECT_EQ(read_regular_file((d.path / "f.json").string(), "config"), "{\"a\": 1}");
}

TEST(ReadRegularFile, MissingFileNamesIt) {
  TempDir d;
  std::string msg = error_of([&] { read_regular_file((d.path / "nope.json").string(), "model config"); });
  EXPECT_NE(msg.find("model config"), std::string::npos) << msg;
  EXPECT_NE(msg.find("nope.json"), std::string::npos) << msg;
}

TEST(ReadRegularFile, DirectoryIsRefusedNamingThePath) {
  TempDir d;
  fs::create_directory(d.path / "config.json");
  std::string msg = error_of([&] { read_regular_file((d.path / "config.json").string(), "model config"); });
  EXPECT_NE(msg.find("config.json is not a regular file (a directory)"), std::string::npos) << msg;
}

TEST(ReadRegularFile, FifoIsRefusedWithoutBlocking) {
  TempDir d;
  std::string fifo = (d.path / "config.json").string();
  ASSERT_EQ(::mkfifo(fifo.c_str(), 0600), 0);
  std::string msg = error_within_seconds([&] { read_regular_file(fifo, "model config"); });
  EXPECT_NE(msg.find("config.json is not a regular file"), std::string::npos) << msg;
}

TEST(ReadRegularFile, SizeLimit) {
  TempDir d;
  std::ofstream(d.path / "big") << std::string(100, 'x');
  EXPECT_NE(error_of([&] { read_regular_file((d.path / "big").string(), "f", 99); }).find("more than the 99"),
            std::string::npos);
}

TEST(MappedFile, FifoIsRefusedWithoutBlocking) {
  TempDir d;
  std::string fifo = (d.path / "model.safetensors").string();
  ASSERT_EQ(::mkfifo(fifo.c_str(), 0600), 0);
  std::string msg = error_within_seconds([&] { MappedFile m(fifo); });
  EXPECT_NE(msg.find("model.safetensors is not a regular file"), std::string::npos) << msg;
}

}  // namespace
}  // namespace dsinfer
