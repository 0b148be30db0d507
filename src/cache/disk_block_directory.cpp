#include "cache/disk_block_directory.h"

#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <filesystem>

#include "cache/disk_block_format.h"

namespace dsinfer::cache {

namespace fs = std::filesystem;

namespace {

bool stat_file(const std::string& path, int64_t& bytes, double& mtime) {
  struct stat st;
  if (::stat(path.c_str(), &st) != 0 || !S_ISREG(st.st_mode)) return false;
  bytes = int64_t(st.st_size);
  mtime = double(st.st_mtim.tv_sec) + double(st.st_mtim.tv_nsec) * 1e-9;
  return true;
}

bool remove_file(const std::string& path) { return ::unlink(path.c_str()) == 0 || errno == ENOENT; }

}  // namespace

DiskDirectoryScan scan_block_directory(const std::string& root, double stale_temp_s, double now) {
  DiskDirectoryScan scan;
  std::error_code ec;
  // root/<format>/<fan-out>/<key>.kvb: two levels of directories, nothing else is looked at.
  for (fs::directory_iterator format(root, ec), end; !ec && format != end; format.increment(ec)) {
    if (!format->is_directory(ec)) continue;
    const std::string format_name = format->path().filename().string();
    std::error_code ec2;
    for (fs::directory_iterator fan(format->path(), ec2); !ec2 && fan != end; fan.increment(ec2)) {
      if (!fan->is_directory(ec2)) continue;
      std::error_code ec3;
      for (fs::directory_iterator file(fan->path(), ec3); !ec3 && file != end; file.increment(ec3)) {
        const std::string name = file->path().filename().string();
        const std::string path = file->path().string();
        DiskBlockEntry e;
        if (!stat_file(path, e.bytes, e.mtime)) continue;  // gone meanwhile, or not a file
        if (parse_disk_block_name(name, e.key)) {
          e.path = path;
          e.format = format_name;
          scan.bytes += e.bytes;
          scan.blocks.push_back(std::move(e));
        } else if (name.find(".kvb.tmp.") != std::string::npos && now - e.mtime > stale_temp_s) {
          if (remove_file(path)) ++scan.stale_temps_removed;
        }
      }
    }
  }
  return scan;
}

DiskGcResult collect_block_garbage(DiskDirectoryScan& scan, double target_bytes, double ttl_s, double now) {
  DiskGcResult r;
  std::sort(scan.blocks.begin(), scan.blocks.end(),
            [](const DiskBlockEntry& a, const DiskBlockEntry& b) { return a.mtime < b.mtime; });
  int64_t bytes = scan.bytes;
  size_t kept = 0;
  for (size_t i = 0; i < scan.blocks.size(); ++i) {
    DiskBlockEntry& e = scan.blocks[i];
    const bool expired = ttl_s > 0 && now - e.mtime > ttl_s;
    // Oldest first: once one file is neither expired nor over the target, neither is the rest.
    const bool remove = expired || double(bytes) > target_bytes;
    if (remove && remove_file(e.path)) {  // a file not ours to remove (permissions) stays
      bytes -= e.bytes;
      ++r.removed_files;
      r.removed_bytes += e.bytes;
      continue;
    }
    if (kept != i) scan.blocks[kept] = std::move(e);
    ++kept;
  }
  scan.blocks.resize(kept);
  scan.bytes = bytes;
  const int64_t files = int64_t(kept);
  r.files_left = files;
  r.bytes_left = bytes;
  return r;
}

}  // namespace dsinfer::cache
