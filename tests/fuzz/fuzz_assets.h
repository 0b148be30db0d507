// DeepSeek-V3's real tokenizer from assets/, loaded once per fuzz process: the production
// vocabulary, merges, pre-tokenizer regexes and chat template for the targets that run
// arbitrary text or requests through them.
#pragma once

#include <string>

#include "tokenizer/tokenizer.h"

namespace dsinfer::fuzz {

inline const tokenizer::Tokenizer& deepseek_v3_tokenizer() {
  static const tokenizer::Tokenizer t =
      tokenizer::Tokenizer::from_dir(std::string(DSINFER_ASSETS_DIR) + "/tokenizer/deepseek-v3");
  return t;
}

}  // namespace dsinfer::fuzz
