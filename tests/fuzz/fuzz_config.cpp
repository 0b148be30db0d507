// Fuzzes config.json loading (model/config.h): any text, parsed as JSON and validated by
// parse_config. A rejected config must throw dsinfer::Error; an accepted one must survive the
// round trip through to_json (what make-model writes is what load reads) unchanged, and its
// derived values must be computable.
#include <cstdint>
#include <string_view>

#include <nlohmann/json.hpp>

#include "base/error.h"
#include "base/json.h"
#include "fuzz_util.h"
#include "model/config.h"

using namespace dsinfer;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  // What load_config does with the file's text.
  model::ModelConfig c;
  try {
    c = model::parse_config(parse_json(std::string_view(reinterpret_cast<const char*>(data), size), "config.json"));
  } catch (const Error&) {
    return 0;
  }
  FUZZ_CHECK(c.vocab_size > 0 && c.hidden_size > 0 && c.num_hidden_layers > 0);
  FUZZ_CHECK(c.qk_rope_head_dim > 0 && c.qk_rope_head_dim % 2 == 0);
  FUZZ_CHECK(c.eos_token_id < c.vocab_size && c.bos_token_id < c.vocab_size);
  for (int64_t layer = 0; layer < std::min<int64_t>(c.num_hidden_layers, 64); ++layer) (void)c.is_moe_layer(layer);
  (void)c.softmax_scale();
  (void)c.latent_dim();

  nlohmann::json written = model::to_json(c);
  (void)written.dump();
  model::ModelConfig again;
  try {
    again = model::parse_config(written);
  } catch (const Error& e) {
    std::fprintf(stderr, "to_json wrote a config parse_config rejects: %s\n", e.what());
    FUZZ_CHECK(!"round trip through to_json");
  }
  FUZZ_CHECK(model::to_json(again) == written);
  return 0;
}
