// Fuzzes request validation (serve/protocol.h) with DeepSeek-V3's real tokenizer from assets/:
// the first byte picks the endpoint (/v1/chat/completions or /v1/completions) and the context
// limits, the rest is the request body. Every rejection must be an ApiError with a 4xx status
// (anything else would reach the client as a 500 or kill the server); an accepted request must
// hold a non-empty prompt of ids in the vocabulary that, with max_tokens, fits the context, and
// sampling parameters that validate again.
#include <cstdint>
#include <string>
#include <vector>

#include "base/error.h"
#include "fuzz_assets.h"
#include "fuzz_util.h"
#include "serve/api_error.h"
#include "engine/validated_request.h"
#include "serve/protocol.h"
#include "tokenizer/tokenizer.h"

using namespace dsinfer;

namespace {

const tokenizer::Tokenizer& deepseek_v3() { return fuzz::deepseek_v3_tokenizer(); }

}  // namespace

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  deepseek_v3();
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size == 0) return 0;
  const uint8_t mode = data[0];
  const std::string body(reinterpret_cast<const char*>(data + 1), size - 1);
  serve::ProtocolContext ctx;
  ctx.tokenizer = &deepseek_v3();
  ctx.model_names = {"deepseek-v3", "m"};
  // Small and large contexts, a KV pool smaller or larger than the context.
  static const int64_t kLens[] = {16, 4096, 163840, int64_t(1) << 40};
  ctx.limits.vocab_size = int64_t(deepseek_v3().vocab_size());
  ctx.limits.max_model_len = kLens[mode & 3];
  ctx.limits.kv_capacity_tokens = (mode & 4) ? ctx.limits.max_model_len / 2 + 1 : ctx.limits.max_model_len * 2;
  const serve::Endpoint endpoint = (mode & 8) ? serve::Endpoint::kCompletion : serve::Endpoint::kChat;

  serve::ParsedRequest r;
  try {
    r = serve::parse_request(endpoint, body, ctx);
  } catch (const serve::ApiError& e) {
    FUZZ_CHECK(e.status >= 400 && e.status < 500);
    return 0;
  }
  const int64_t vocab = int64_t(ctx.tokenizer->vocab_size());
  FUZZ_CHECK(r.endpoint == endpoint);
  FUZZ_CHECK(r.request.has_value());
  FUZZ_CHECK(!r.prompt().empty());
  for (int32_t id : r.prompt()) FUZZ_CHECK(id >= 0 && id < vocab);
  const int64_t len = int64_t(r.prompt().size());
  FUZZ_CHECK(len < ctx.limits.max_model_len);
  FUZZ_CHECK(r.params().max_tokens >= 1 && r.params().max_tokens <= ctx.limits.max_model_len - len);
  FUZZ_CHECK(r.params().max_tokens <= ctx.limits.kv_capacity_tokens - len);
  for (int32_t id : r.params().stop_token_ids) FUZZ_CHECK(id >= 0 && id < vocab);
  // Validating again must pass (it throws, an uncaught exception and so a crash, otherwise).
  engine::validate_request(ctx.limits, r.prompt(), r.params());
  return 0;
}
