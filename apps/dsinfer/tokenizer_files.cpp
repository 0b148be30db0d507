#include "tokenizer_files.h"

#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <vector>

#include "base/error.h"

namespace dsinfer::app {

namespace fs = std::filesystem;

std::string find_tokenizer_dir(const std::string& explicit_dir) {
  std::vector<fs::path> candidates;
  if (!explicit_dir.empty()) candidates.push_back(explicit_dir);
  else {
    if (const char* env = std::getenv("DSINFER_TOKENIZER_DIR")) candidates.push_back(env);
    std::error_code ec;
    fs::path exe = fs::read_symlink("/proc/self/exe", ec);
    if (!ec)
      for (fs::path p = exe.parent_path(); !p.empty() && p != p.root_path(); p = p.parent_path())
        candidates.push_back(p / "assets/tokenizer/deepseek-v3");
  }
  for (auto& c : candidates)
    if (fs::exists(c / "tokenizer.json")) return c.string();
  fail("cannot find the DeepSeek-V3 tokenizer (tokenizer.json) in ",
       explicit_dir.empty() ? "assets/tokenizer/deepseek-v3 or $DSINFER_TOKENIZER_DIR" : explicit_dir,
       "; pass --tokenizer-dir DIR");
}

void copy_tokenizer_files(const std::string& explicit_dir, const std::string& model_dir) {
  fs::path src = find_tokenizer_dir(explicit_dir);
  for (const char* name : {"tokenizer.json", "tokenizer_config.json"}) {
    std::error_code ec;
    if (!fs::exists(src / name)) continue;
    fs::copy_file(src / name, fs::path(model_dir) / name, fs::copy_options::overwrite_existing, ec);
    check(!ec, "cannot copy ", (src / name).string(), " to ", model_dir, ": ", ec.message());
    // The source may be read-only (a shared checkout); the copy belongs to the model dir's owner.
    fs::permissions(fs::path(model_dir) / name, fs::perms::owner_write, fs::perm_options::add, ec);
  }
}

}  // namespace dsinfer::app
