// --speculative mtp [--draft-tokens k]: speculative decoding with the model's MTP module
// (engine/mtp_drafter.h), as `serve`, `generate` and `bench` take it.
#pragma once

#include <string>

#include "args.h"
#include "base/error.h"
#include "engine/engine_options.h"

namespace dsinfer::app {

#define SPECULATIVE_FLAGS_USAGE "       [--speculative none|mtp [--draft-tokens K]]   (MTP drafts K tokens a step; K = 1 is DeepSeek's)\n"

// Drafts per step: 0 without --speculative mtp.
inline int speculative_draft_tokens(Args& args) {
  const std::string mode = args.get_or("speculative", "none");
  check(mode == "none" || mode == "mtp", "--speculative must be none or mtp, got '", mode, "'");
  const bool k_given = args.given().count("draft-tokens") > 0;
  const int64_t k = args.get_int("draft-tokens", 1, 1, engine::EngineOptions::kMaxDraftTokens);
  check(!k_given || mode == "mtp", "--draft-tokens needs --speculative mtp");
  return mode == "mtp" ? int(k) : 0;
}


}  // namespace dsinfer::app
