// Finding the DeepSeek-V3 tokenizer files that ship with dsinfer, to copy into model dirs.
#pragma once

#include <string>

namespace dsinfer::app {

// The directory holding tokenizer.json: `explicit_dir` if given, else $DSINFER_TOKENIZER_DIR,
// else the copy in the source tree next to the binary (assets/tokenizer/deepseek-v3).
std::string find_tokenizer_dir(const std::string& explicit_dir);
// Copies tokenizer.json and tokenizer_config.json from that directory into model_dir.
void copy_tokenizer_files(const std::string& explicit_dir, const std::string& model_dir);

}  // namespace dsinfer::app
